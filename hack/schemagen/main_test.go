package main

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestUniqueColumnNames(t *testing.T) {
	columns := []apiextensionsv1.CustomResourceColumnDefinition{
		{Name: "Address"}, {Name: "Available"}, {Name: "Reason"}, {Name: "Ready"}, {Name: "Reason"},
	}
	uniqueColumnNames(columns)
	var got []string
	for _, c := range columns {
		got = append(got, c.Name)
	}
	want := []string{"Address", "Available", "Available Reason", "Ready", "Ready Reason"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("columns %v, want %v", got, want)
		}
	}
}
