// Package results ties the service to Tekton Results: where a tenant's
// runs are filed (the parent of their Results), and the client of the
// Results API the recorder and the gateway use.
package results

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
)

// maxParent is the longest parent Results accepts (^[a-z0-9_-]{1,63}).
const maxParent = 63

// Parent is the Results parent of one tenant namespace: upstream files
// runs by namespace alone, so two workspaces' namespaces named default
// would meet. The parent is "<logical cluster>_<namespace>": logical
// cluster names are base36 (or "root") and namespaces hold no '_', so the
// form is injective. Where it exceeds 63 characters, the namespace part
// is "h" and 26 base32 characters of a SHA-256 of both (130 bits).
func Parent(cluster logicalcluster.Name, namespace string) string {
	p := cluster.String() + "_" + namespace
	if len(p) <= maxParent {
		return p
	}
	sum := sha256.Sum256([]byte(cluster.String() + "/" + namespace))
	hash := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:26]
	return cluster.String() + "_h" + hash
}

// ResultName is the full name of a Result.
func ResultName(parent, id string) string { return parent + "/results/" + id }
