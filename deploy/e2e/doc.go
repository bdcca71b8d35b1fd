// Package e2e proves the deploy/ manifests and the admission webhook against
// a real kube-apiserver and etcd started on loopback by the tests. The two
// servers are built from their upstream Go modules by the separate module in
// tools/ (so egressd's go.mod carries none of their dependencies) and cached
// under the user cache directory, keyed by that module's go.mod and go.sum.
// Objects are applied with kubectl (part of the machine image, as for
// deploy/deploycheck) with server-side strict field validation.
package e2e
