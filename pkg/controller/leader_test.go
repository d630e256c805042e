package controller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLeaderElectionConfigIsCheckedAtLoad(t *testing.T) {
	d := func(s string) metav1.Duration {
		v, _ := time.ParseDuration(s)
		return metav1.Duration{Duration: v}
	}
	for _, tc := range []struct {
		name    string
		cfg     LeaderElectionConfig
		wantErr string
	}{
		{name: "defaults", cfg: LeaderElectionConfig{}},
		{name: "renew deadline not shorter than the lease", cfg: LeaderElectionConfig{LeaseDuration: d("5s"), RenewDeadline: d("5s")}, wantErr: "shorter than leaseDuration"},
		{name: "no room for a jittered retry", cfg: LeaderElectionConfig{RenewDeadline: d("2s"), RetryPeriod: d("2s")}, wantErr: "longer than 1.2 x retryPeriod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.defaults()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("defaults() = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("defaults() = %v, want an error saying %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && (tc.cfg.Identity == "" || tc.cfg.LeaseName == "" || tc.cfg.LeaseDuration.Duration != 8*time.Second) {
				t.Errorf("defaults left %+v", tc.cfg)
			}
		})
	}
}
