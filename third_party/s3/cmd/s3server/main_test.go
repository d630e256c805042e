package main

import (
	"bufio"
	"strings"
	"testing"
)

func TestDechunk(t *testing.T) {
	body := "2d\r\n[hello] in-s3 says hello\n[hello] second line\n\r\n0\r\nx-amz-checksum-crc32:a8EY5A==\r\n\r\n"
	got, err := dechunk(bufio.NewReader(strings.NewReader(body)))
	if err != nil || string(got) != "[hello] in-s3 says hello\n[hello] second line\n" {
		t.Fatalf("dechunk = %q, %v", got, err)
	}
	signed := "3;chunk-signature=abc\r\nabc\r\n2;chunk-signature=def\r\nde\r\n0;chunk-signature=0\r\n\r\n"
	if got, err := dechunk(bufio.NewReader(strings.NewReader(signed))); err != nil || string(got) != "abcde" {
		t.Fatalf("signed dechunk = %q, %v", got, err)
	}
	if _, err := dechunk(bufio.NewReader(strings.NewReader("zz\r\n"))); err == nil {
		t.Fatal("a bad chunk size is accepted")
	}
}
