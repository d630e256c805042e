package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
)

// logQuery keeps the PodLogOptions a tenant may set, checked as the
// apiserver checks them, for the workload cluster's request.
func logQuery(q url.Values) (url.Values, *corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{Container: q.Get("container")}
	var errs []string
	boolean := func(key string, into *bool) {
		if v := q.Get(key); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not a boolean", key, v))
			}
			*into = b
		}
	}
	positive := func(key string, min int64) {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < min {
				errs = append(errs, fmt.Sprintf("%s: %q must be an integer of at least %d", key, v, min))
			}
		}
	}
	boolean("follow", &opts.Follow)
	boolean("previous", &opts.Previous)
	boolean("timestamps", &opts.Timestamps)
	positive("sinceSeconds", 1)
	positive("tailLines", 0)
	positive("limitBytes", 1)
	if v := q.Get("sinceTime"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			errs = append(errs, fmt.Sprintf("sinceTime: %q is not an RFC 3339 time", v))
		}
		if q.Get("sinceSeconds") != "" {
			errs = append(errs, "at most one of sinceTime or sinceSeconds may be specified")
		}
	}
	if len(errs) > 0 {
		return nil, nil, apierrors.NewBadRequest("invalid log options: " + strings.Join(errs, "; "))
	}
	out := url.Values{}
	for _, k := range []string{"container", "follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes", "stream"} {
		if v, ok := q[k]; ok {
			out[k] = v
		}
	}
	return out, opts, nil
}

// streamLog answers GET …/pods/<name>/log from the workload cluster that
// runs the pod. A follow of a container that has not started waits for it
// (the kubelet would refuse it), and lasts until the container ends or
// the client goes.
func (s *Server) streamLog(ctx context.Context, w http.ResponseWriter, p podRequest) error {
	q, opts, err := logQuery(p.query)
	if err != nil {
		return err
	}
	cl, pod, err := s.findTypedPod(ctx, p)
	if apierrors.IsNotFound(err) && p.archived {
		return s.streamArchivedLog(ctx, w, p, opts)
	}
	if err != nil {
		return err
	}
	container := opts.Container
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			return apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", p.name, containerNames(pod)))
		}
		container = pod.Spec.Containers[0].Name
	}
	if !hasContainer(pod, container) {
		return apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, p.name))
	}
	if opts.Follow && waiting(pod, container) {
		if err := s.waitStarted(ctx, cl, p, container); err != nil {
			return err
		}
	}
	resp, err := cl.get(ctx, p.workloadPath(), q, "*/*")
	if err != nil {
		return apierrors.NewServiceUnavailable("the workload cluster running the pod does not answer")
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, err := decodeBody(resp)
		return p.scrub(err)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flush(w)
	return copyFlushing(w, resp.Body)
}

// streamArchivedLog answers for a pod that is gone with what its step
// printed, from the archive.
func (s *Server) streamArchivedLog(ctx context.Context, w http.ResponseWriter, p podRequest, opts *corev1.PodLogOptions) error {
	tr, record, err := s.archivedTaskRun(ctx, p)
	if err != nil {
		return err
	}
	log, err := s.archive.archivedPodLog(ctx, tr, record, opts)
	if err != nil {
		if _, ok := err.(apierrors.APIStatus); !ok {
			s.logger(p).Infow("archived log unreadable", "error", err)
			err = apierrors.NewServiceUnavailable("the pod is gone and its archived log cannot be read")
		}
		return err
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(log)
	return nil
}

// copyFlushing copies a log stream, flushing every read so that a follow
// shows each line when it is written.
func copyFlushing(w http.ResponseWriter, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went
			}
			flush(w)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			// The response has started: the client sees the stream cut.
			panic(http.ErrAbortHandler)
		}
	}
}

// findTypedPod is findPod decoded as a Pod.
func (s *Server) findTypedPod(ctx context.Context, p podRequest) (workloadCluster, *corev1.Pod, error) {
	cl, obj, err := s.findPod(ctx, p, "application/json")
	if err != nil {
		return cl, nil, err
	}
	if !tenantView(obj, p.workspace.String(), "") {
		return cl, nil, apierrors.NewNotFound(podsResource, p.name)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return cl, nil, err
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(data, pod); err != nil {
		return cl, nil, err
	}
	return cl, pod, nil
}

// waitStarted polls the pod until the container has started (or ended).
func (s *Server) waitStarted(ctx context.Context, cl workloadCluster, p podRequest, container string) error {
	return wait.PollUntilContextCancel(ctx, 500*time.Millisecond, false, func(ctx context.Context) (bool, error) {
		_, pod, err := s.findTypedPod(ctx, p)
		if apierrors.IsNotFound(err) {
			return false, err
		}
		if err != nil {
			return false, nil
		}
		return !waiting(pod, container), nil
	})
}

// waiting says the container has neither started nor ended, in a pod
// that has not ended either.
func waiting(pod *corev1.Pod, container string) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, st := range statuses {
			if st.Name == container {
				return st.State.Running == nil && st.State.Terminated == nil
			}
		}
	}
	return pod.Status.Phase == corev1.PodPending
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}

func containerNames(pod *corev1.Pod) []string {
	var out []string
	for _, c := range pod.Spec.Containers {
		out = append(out, c.Name)
	}
	return out
}
