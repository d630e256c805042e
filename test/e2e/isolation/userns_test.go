//go:build e2e

package isolation

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// uidMapScript reports the step's uid map (inside, outside, length: root
// in the step is the node's uid "outside") and that root in the step still
// owns what it writes to a workspace on a claim (the local-path volume is
// mounted idmapped) and to an emptyDir.
const uidMapScript = `set -e
read inside outside length < /proc/self/uid_map
echo "$inside $outside $length" > $(results.uidmap.path)
echo written > $(workspaces.claim.path)/file
echo written > /scratch/file
echo "$(stat -c %u $(workspaces.claim.path)/file) $(stat -c %u /scratch/file)" > $(results.owners.path)
`

func uidMapRun(name string) *v1.TaskRun {
	tr := run(name, v1.TaskSpec{
		Results:    []v1.TaskResult{{Name: "uidmap"}, {Name: "owners"}},
		Workspaces: []v1.WorkspaceDeclaration{{Name: "claim"}},
		Volumes:    []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		Steps: []v1.Step{{Name: "uidmap", Image: "docker.io/library/busybox:1.36", Script: "#!/bin/sh\n" + uidMapScript,
			VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}},
	}, nil)
	tr.Spec.Workspaces = []v1.WorkspaceBinding{{Name: "claim", VolumeClaimTemplate: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Mi")}},
	}}}}
	return tr
}

// TestStepRootIsNotNodeRoot: on workload clusters whose nodes support user
// namespaces, a tenant's pod runs in one (hostUsers: false). Root in its
// step is uid 65536 or above on the node, and still writes its workspaces
// (a claim and an emptyDir) as root. A tenant the platform trusts with the
// privileged level keeps the node's users.
func TestStepRootIsNotNodeRoot(t *testing.T) {
	ctx := context.Background()
	wc := env.WorkloadCluster(ctx, t, clusters[0])
	if !wc.Status.UserNamespaces {
		t.Fatalf("WorkloadCluster %s reports no user namespace support (status %+v); the stack's nodes run containerd 2 and runc 1.4", wc.Name, wc.Status)
	}
	plain := env.NewFleetTenant(ctx, t, "e2e-userns", pinned(""))
	trusted := env.NewFleetTenant(ctx, t, "e2e-userns-trusted", pinned("privileged"))
	create(ctx, t, plain, uidMapRun("uidmap"))
	create(ctx, t, trusted, uidMapRun("uidmap"))

	inside, outside, length := uidMap(ctx, t, plain)
	if inside != 0 || outside < 65536 || length != 65536 {
		t.Errorf("a baseline tenant's step maps uid %d to the node's %d (%d ids), want root to an unprivileged range at or above 65536", inside, outside, length)
	}
	t.Logf("baseline tenant: root in the step is uid %d on the node", outside)
	if _, outside, _ := uidMap(ctx, t, trusted); outside != 0 {
		t.Errorf("a privileged tenant's step maps root to the node's %d, want the node's own users", outside)
	}

	pods, err := env.Workload.CoreV1().Pods(workload.Namespace(plain.Cluster, ns)).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods of the baseline tenant: %v (%v)", pods, err)
	}
	if hu := pods.Items[0].Spec.HostUsers; hu == nil || *hu {
		t.Errorf("pod %s has hostUsers %v, want false", pods.Items[0].Name, ptr.Deref(hu, true))
	}
}

// uidMap waits for the tenant's uidmap run and returns the first line of
// its step's uid map, checking that root owned what it wrote.
func uidMap(ctx context.Context, t *testing.T, tn *framework.Tenant) (inside, outside, length int) {
	t.Helper()
	tr := tn.WaitTaskRunDone(ctx, t, ns, "uidmap", 3*time.Minute)
	if status, reason := framework.Condition(tr); status != "True" {
		t.Fatalf("uidmap in %s ended %s/%s: %s", tn.Name, status, reason, tr.Status.GetCondition("Succeeded").GetMessage())
	}
	results := map[string]string{}
	for _, r := range tr.Status.Results {
		results[r.Name] = strings.TrimSpace(r.Value.StringVal)
	}
	if results["owners"] != "0 0" {
		t.Errorf("in %s, files root wrote to the claim and the emptyDir are owned by %q, want \"0 0\"", tn.Name, results["owners"])
	}
	f := strings.Fields(results["uidmap"])
	if len(f) != 3 {
		t.Fatalf("uid map of %s: %q", tn.Name, results["uidmap"])
	}
	n := make([]int, 3)
	for i := range f {
		v, err := strconv.Atoi(f[i])
		if err != nil {
			t.Fatalf("uid map of %s: %q", tn.Name, results["uidmap"])
		}
		n[i] = v
	}
	return n[0], n[1], n[2]
}

// rootfsScript reports the step's node uid for its root and who owns its
// image's files, as the step sees them.
const rootfsScript = `set -e
read inside outside length < /proc/self/uid_map
echo "$outside" > $(results.outside.path)
echo "$(stat -c %u:%g /bin/busybox) $(stat -c %u:%g /etc/passwd)" > $(results.owners.path)
`

// TestRootFilesystemMappedPerPod: pods started together, of two tenants,
// each get a range of node uids of their own, and each sees its image's
// files owned by its own root, through the idmapped mount of its root
// filesystem (a root filesystem mounted without it, or with another pod's
// mapping, shows them as the overflow uid 65534). What it cannot see: the
// key of containerd's user-namespace cache (third_party/containerd
// patches). The shim that mounts a pod's root filesystem serves that pod
// alone, and containerd's own idmapped mounts only read the image's
// /etc/group; a wrong key is caught by the patch's own test, run by
// TestContainerdPatchesApply (a build whose cache served every mapping one
// namespace passed this test).
func TestRootFilesystemMappedPerPod(t *testing.T) {
	ctx := context.Background()
	if wc := env.WorkloadCluster(ctx, t, clusters[0]); !wc.Status.UserNamespaces {
		t.Fatalf("WorkloadCluster %s reports no user namespace support", wc.Name)
	}
	tenants := []*framework.Tenant{
		env.NewFleetTenant(ctx, t, "e2e-rootfs-a", pinned("")),
		env.NewFleetTenant(ctx, t, "e2e-rootfs-b", pinned("")),
	}
	const perTenant = 3
	for _, tn := range tenants {
		for i := range perTenant {
			create(ctx, t, tn, run(fmt.Sprintf("rootfs-%d", i), v1.TaskSpec{
				Results: []v1.TaskResult{{Name: "outside"}, {Name: "owners"}},
				Steps:   []v1.Step{step("rootfs", rootfsScript, nil)},
			}, nil))
		}
	}
	owner := map[string]string{} // node uid of a step's root -> tenant/run
	for _, tn := range tenants {
		for i := range perTenant {
			name := fmt.Sprintf("rootfs-%d", i)
			tr := tn.WaitTaskRunDone(ctx, t, ns, name, 3*time.Minute)
			if status, reason := framework.Condition(tr); status != "True" {
				t.Fatalf("%s in %s ended %s/%s: %s", name, tn.Name, status, reason, tr.Status.GetCondition("Succeeded").GetMessage())
			}
			results := map[string]string{}
			for _, r := range tr.Status.Results {
				results[r.Name] = strings.TrimSpace(r.Value.StringVal)
			}
			if results["owners"] != "0:0 0:0" {
				t.Errorf("%s in %s sees its image's /bin/busybox and /etc/passwd owned by %q, want \"0:0 0:0\"", name, tn.Name, results["owners"])
			}
			outside, err := strconv.Atoi(results["outside"])
			if err != nil || outside < 65536 {
				t.Errorf("%s in %s: root is node uid %q, want an unprivileged range at or above 65536", name, tn.Name, results["outside"])
				continue
			}
			if other, ok := owner[results["outside"]]; ok {
				t.Errorf("%s in %s and %s share node uid %d for root", name, tn.Name, other, outside)
			}
			owner[results["outside"]] = tn.Name + "/" + name
		}
	}
	t.Logf("roots of %d pods on the node: %v", len(owner), owner)
}
