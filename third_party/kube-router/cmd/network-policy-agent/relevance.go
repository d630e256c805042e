package main

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"
)

// ruleRelevantPodEvents asks for a sync (request) only on the pod events
// that change the node's rules. kube-router's pod handler does nothing
// else than ask for a full sync (pkg/controllers/netpol/pod.go, v2.1.0),
// which reads every pod from the informer's cache; so the event itself
// need not reach it. kube-router's rules are made of the pods it calls
// actionable (an IP, not host network, not finished), and of their IPs,
// host IP, namespace and labels; containers' named ports are part of the
// immutable spec. So:
//   - an add matters for an actionable pod (kube-router's own test);
//   - an update matters when the pod enters or leaves that set, or when it
//     is in it and one of those fields changes; a phase change from Pending
//     to Running with nothing else changing does not;
//   - a delete matters only for a pod still in the set: a finished pod's
//     rules went with the sync its finishing caused. A tombstone (a delete
//     the informer missed) always matters.
func ruleRelevantPodEvents(request func()) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			if pod, ok := obj.(*corev1.Pod); ok && actionable(pod) {
				request()
			}
		},
		UpdateFunc: func(oldObj, newObj interface{}) {
			oldPod, ok1 := oldObj.(*corev1.Pod)
			newPod, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 || ruleRelevantUpdate(oldPod, newPod) {
				request()
			}
		},
		DeleteFunc: func(obj interface{}) {
			if pod, ok := obj.(*corev1.Pod); ok && !actionable(pod) {
				return
			}
			request()
		},
	}
}

func ruleRelevantUpdate(oldPod, newPod *corev1.Pod) bool {
	was, is := actionable(oldPod), actionable(newPod)
	if was != is {
		return true
	}
	if !is {
		return false
	}
	return oldPod.Status.PodIP != newPod.Status.PodIP ||
		!equality.Semantic.DeepEqual(oldPod.Status.PodIPs, newPod.Status.PodIPs) ||
		oldPod.Status.HostIP != newPod.Status.HostIP ||
		!equality.Semantic.DeepEqual(oldPod.Labels, newPod.Labels)
}

// actionable is kube-router's isNetPolActionable (pkg/controllers/netpol/
// utils.go, v2.1.0): the pods its rules are made of.
func actionable(pod *corev1.Pod) bool {
	finished := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed ||
		pod.Status.Phase == "Completed"
	return !finished && pod.Status.PodIP != "" && !pod.Spec.HostNetwork
}
