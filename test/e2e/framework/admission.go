package framework

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

// Admission reads the host controller's admission state
// (/debug/admission).
func Admission() (fleet.AdmissionState, error) {
	var state fleet.AdmissionState
	return state, readDebug("/debug/admission", &state)
}

// FleetView reads the policies and cluster limits the host controller acts
// on (/debug/fleet).
func FleetView() (fleet.View, error) {
	var view fleet.View
	return view, readDebug("/debug/fleet", &view)
}

// readDebug decodes the JSON the host controller serves at path.
func readDebug(path string, into any) error {
	resp, err := http.Get("http://" + devstack.ControllerDebugAddress + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// WaitPolicyInForce waits until the controller acts on the TenantPolicy
// name as spec says: the policy reaches it through an informer, and a run
// created before would be placed and admitted without it.
func WaitPolicyInForce(t testing.TB, name string, spec fleetv1alpha1.TenantPolicySpec) {
	t.Helper()
	Eventually(t, 30*time.Second, "the controller acts on TenantPolicy "+name, func() (bool, string, error) {
		view, err := FleetView()
		if err != nil {
			return false, err.Error(), nil
		}
		got, ok := view.Policies[name]
		return ok && equality.Semantic.DeepEqual(got, spec), fmt.Sprintf("it has %+v", got), nil
	})
}

// WaitClusterLimitsInForce waits until the controller acts on a workload
// cluster's limits.
func WaitClusterLimitsInForce(t testing.TB, cluster string, limits fleetv1alpha1.ClusterLimits) {
	t.Helper()
	Eventually(t, 30*time.Second, "the controller acts on the limits of "+cluster, func() (bool, string, error) {
		view, err := FleetView()
		if err != nil {
			return false, err.Error(), nil
		}
		got, ok := view.Clusters[cluster]
		return ok && got == limits, fmt.Sprintf("it has %+v", got), nil
	})
}

// WaitAdmissionReleased waits until the controller's admission holds no
// TaskRun of the tenants, running or waiting: finished runs free their
// slots.
func WaitAdmissionReleased(t testing.TB, tenants ...*Tenant) {
	t.Helper()
	Eventually(t, time.Minute, "the admission holds no TaskRun of the tenants", func() (bool, string, error) {
		state, err := Admission()
		if err != nil {
			return false, err.Error(), nil
		}
		var held []string
		for _, keys := range []map[string]fleet.AdmissionSlot{state.Running, state.Waiting} {
			for key, slot := range keys {
				for _, tn := range tenants {
					if slot.Workspace == tn.Cluster.String() {
						held = append(held, key)
					}
				}
			}
		}
		return len(held) == 0, "held: " + strings.Join(held, ", "), nil
	})
}

// WaitAdmissionWaiting waits until the controller's admission keeps n
// TaskRuns of the tenant waiting.
func WaitAdmissionWaiting(t testing.TB, tn *Tenant, n int) {
	t.Helper()
	Eventually(t, time.Minute, fmt.Sprintf("%d TaskRuns of %s waiting for admission", n, tn.Name), func() (bool, string, error) {
		state, err := Admission()
		if err != nil {
			return false, err.Error(), nil
		}
		waiting := 0
		for _, slot := range state.Waiting {
			if slot.Workspace == tn.Cluster.String() {
				waiting++
			}
		}
		return waiting == n, fmt.Sprintf("%d waiting", waiting), nil
	})
}

// ControllerMetrics scrapes the host controller's /metrics, checking the
// exposition format.
func ControllerMetrics() (metrics.Families, error) {
	resp, err := http.Get("http://" + devstack.ControllerDebugAddress + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return metrics.Parse(resp.Body)
}
