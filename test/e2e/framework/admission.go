package framework

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/fleet"
)

// Admission reads the host controller's admission state
// (/debug/admission).
func Admission() (fleet.AdmissionState, error) {
	var state fleet.AdmissionState
	resp, err := http.Get("http://" + devstack.ControllerDebugAddress + "/debug/admission")
	if err != nil {
		return state, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return state, fmt.Errorf("/debug/admission: %s", resp.Status)
	}
	return state, json.NewDecoder(resp.Body).Decode(&state)
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
