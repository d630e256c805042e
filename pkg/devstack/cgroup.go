package devstack

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Nodes after the first put their pods under a cgroup root of their own
// (kubelet's cgroupRoot), so that two kubelets never manage the same
// kubepods hierarchy. Kubelet refuses a cgroup root that does not exist in
// every cgroup v1 hierarchy it uses, so the stack creates it in all.

// cgroupV1Hierarchies are the mount points of the cgroup v1 hierarchies.
func cgroupV1Hierarchies() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields, fstype := strings.Fields(pre), strings.Fields(post)
		if len(fields) >= 5 && len(fstype) > 0 && fstype[0] == "cgroup" {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, nil
}

// ensureCgroupRoot creates root in every cgroup v1 hierarchy. A new cpuset
// cgroup gets its parent's CPUs and memory nodes (it starts with none).
func ensureCgroupRoot(root string) error {
	hierarchies, err := cgroupV1Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup root %s: %w", root, err)
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			if err := inheritCgroupValue(dir, file); err != nil {
				return fmt.Errorf("cgroup root %s: %w", root, err)
			}
		}
	}
	return nil
}

// inheritCgroupValue copies file from dir's parent when it exists and is
// empty in dir.
func inheritCgroupValue(dir, file string) error {
	own, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bytes.TrimSpace(own)) > 0) {
		return nil
	}
	if err != nil {
		return err
	}
	parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), file))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, file), parent, 0o644)
}

// cgroupRootDirs are the directories of root that exist, in every
// hierarchy, deepest first.
func cgroupRootDirs(root string) []string {
	hierarchies, _ := cgroupV1Hierarchies()
	var dirs []string
	for _, h := range hierarchies {
		_ = filepath.WalkDir(filepath.Join(h, root), func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

// removeCgroupRoot removes root with the (empty) cgroups kubelet left in it.
func removeCgroupRoot(root string) error {
	var errs []error
	for _, dir := range cgroupRootDirs(root) {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// podLeftovers are the processes still in a node's pod cgroups once its
// containerd and shims are gone, with their executables: a container's
// `runc init` whose start the tear-down cut short sleeps on, orphaned,
// in the node's network namespace, which then outlives the node (with
// the host's end of the node link) and fails the next bring-up.
func podLeftovers(root string) map[int]string {
	out := map[int]string{}
	for _, dir := range cgroupRootDirs(filepath.Join(root, "kubepods")) {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(field)
			if err != nil {
				continue
			}
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
				out[pid] = strings.TrimSuffix(exe, " (deleted)")
			}
		}
	}
	return out
}
