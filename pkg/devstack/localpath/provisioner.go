// Package localpath is the local stack's storage provisioner: PVCs of its
// StorageClass get a PersistentVolume backed by a directory on the node
// (a "local" volume, so pods sharing a claim land on the node that holds
// it), and the directory goes when the volume is released.
package localpath

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

const (
	// ProvisionerName is the StorageClass provisioner this serves.
	ProvisionerName = "pipelines-service.dev/local-path"
	// ClassName is the stack's default StorageClass.
	ClassName = "local-path"

	annSelectedNode  = "volume.kubernetes.io/selected-node"
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
	defaultCapacity  = "1Gi"
)

// StorageClass is the default StorageClass of the local stack: volumes are
// made when a pod needs them, on that pod's node.
func StorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ClassName,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       ProvisionerName,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
	}
}

// Provisioner provisions and deletes local volumes of one node.
type Provisioner struct {
	client kubernetes.Interface
	node   string
	dir    string
	log    *zap.SugaredLogger
	queue  workqueue.TypedRateLimitingInterface[string]
	pvcs   corev1listers.PersistentVolumeClaimLister
	pvs    corev1listers.PersistentVolumeLister
	start  func(<-chan struct{})
	synced []cache.InformerSynced
}

// New wires the provisioner; dir holds one directory per volume.
func New(client kubernetes.Interface, node, dir string, log *zap.SugaredLogger) (*Provisioner, error) {
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	p := &Provisioner{
		client: client, node: node, dir: dir, log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "local-path"}),
		pvcs:  factory.Core().V1().PersistentVolumeClaims().Lister(),
		pvs:   factory.Core().V1().PersistentVolumes().Lister(),
		start: factory.Start,
	}
	for prefix, inf := range map[string]cache.SharedIndexInformer{
		"pvc/": factory.Core().V1().PersistentVolumeClaims().Informer(),
		"pv/":  factory.Core().V1().PersistentVolumes().Informer(),
	} {
		enqueue := func(obj interface{}) {
			if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
				p.queue.Add(prefix + key)
			}
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: enqueue, UpdateFunc: func(_, obj interface{}) { enqueue(obj) }, DeleteFunc: enqueue,
		}); err != nil {
			return nil, err
		}
		p.synced = append(p.synced, inf.HasSynced)
	}
	return p, nil
}

// Run serves until ctx ends.
func (p *Provisioner) Run(ctx context.Context) error {
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	p.start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return fmt.Errorf("informers did not sync")
	}
	go func() { <-ctx.Done(); p.queue.ShutDown() }()
	p.log.Infow("serving", "provisioner", ProvisionerName, "node", p.node, "dir", p.dir)
	for {
		key, quit := p.queue.Get()
		if quit {
			return nil
		}
		if err := p.sync(ctx, key); err != nil {
			utilruntime.HandleError(fmt.Errorf("%s: %w", key, err))
			p.queue.AddRateLimited(key)
		} else {
			p.queue.Forget(key)
		}
		p.queue.Done(key)
	}
}

func (p *Provisioner) sync(ctx context.Context, key string) error {
	switch {
	case strings.HasPrefix(key, "pvc/"):
		ns, name, err := cache.SplitMetaNamespaceKey(strings.TrimPrefix(key, "pvc/"))
		if err != nil {
			return err
		}
		pvc, err := p.pvcs.PersistentVolumeClaims(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return p.provision(ctx, pvc)
	default:
		pv, err := p.pvs.Get(strings.TrimPrefix(key, "pv/"))
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return p.reclaim(ctx, pv)
	}
}

// provision makes the volume of a pending claim of our class once the
// scheduler has chosen our node for its first pod.
func (p *Provisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending ||
		ptr.Deref(pvc.Spec.StorageClassName, "") != ClassName || pvc.Annotations[annSelectedNode] != p.node {
		return nil
	}
	name := "pvc-" + string(pvc.UID)
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(path, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o777); err != nil { // any pod user may write
		return err
	}
	capacity := resource.MustParse(defaultCapacity)
	if req, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		capacity = req
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: capacity},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              ClassName,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{p.node}}},
			}}}},
		},
	}
	_, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		p.log.Infow("provisioned", "pv", name, "claim", pvc.Namespace+"/"+pvc.Name, "path", path)
	}
	return err
}

// reclaim deletes a released volume of ours and its directory. Volumes of
// other nodes are their provisioners' to delete.
func (p *Provisioner) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Annotations[annProvisionedBy] != ProvisionerName || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Spec.Local == nil ||
		!onNode(pv, p.node) {
		return nil
	}
	path := filepath.Clean(pv.Spec.Local.Path)
	if filepath.Dir(path) != filepath.Clean(p.dir) {
		return fmt.Errorf("volume %s points outside %s: %s", pv.Name, p.dir, path)
	}
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		p.log.Infow("deleted", "pv", pv.Name, "path", path)
	}
	return err
}

// onNode reports whether the volume's node affinity names node.
func onNode(pv *corev1.PersistentVolume, node string) bool {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return false
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, expr := range term.MatchExpressions {
			if expr.Key == corev1.LabelHostname && expr.Operator == corev1.NodeSelectorOpIn && slices.Contains(expr.Values, node) {
				return true
			}
		}
	}
	return false
}
