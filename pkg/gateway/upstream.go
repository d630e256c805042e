package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// get sends a GET for path with query to a workload cluster, with the
// cluster's credentials, asking for accept. The caller closes the body.
func (cl workloadCluster) get(ctx context.Context, path string, query url.Values, accept string) (*http.Response, error) {
	rc, ok := cl.client.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok {
		return nil, fmt.Errorf("workload cluster %s: no REST client", cl.name)
	}
	u := rc.Get().AbsPath(path).URL()
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := rc.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("workload cluster %s: %w", cl.name, err)
	}
	return resp, nil
}

// decodeBody reads a JSON object; a non-2xx answer becomes the API error
// it carries.
func decodeBody(resp *http.Response) (map[string]any, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, statusError(resp.StatusCode, data)
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", resp.Request.URL.Path, err)
	}
	return obj, nil
}

// statusError is the API error of a failed answer.
func statusError(code int, body []byte) error {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		return &apierrors.StatusError{ErrStatus: st}
	}
	return apierrors.NewGenericServerResponse(code, http.MethodGet, podsResource, "", strings.TrimSpace(string(body)), 0, false)
}

// jsonAccept is the client's Accept without protobuf, which the gateway
// does not translate: JSON (a Table if asked for) is what it answers.
func jsonAccept(accept string) string {
	var kept []string
	for _, part := range strings.Split(accept, ",") {
		if p := strings.TrimSpace(part); p != "" && !strings.Contains(p, "protobuf") {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return "application/json"
	}
	return strings.Join(kept, ",")
}
