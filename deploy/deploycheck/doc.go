// Package deploycheck renders egressd's kustomizations (deploy/corporate,
// deploy/workload) and validates them without a cluster: every object
// decodes strictly into its k8s.io/api type, and a set of cross-checks
// catches what no generic linter can, such as a Private Link Service with
// proxy protocol on in front of an egressd config that does not require the
// header, or a termination grace period shorter than the drain deadline.
//
// On the workload side the default route (deploy/workload) is checked by
// running the real egressd-inject admission handler on the example pod and
// inspecting the pod it produces; the static route (deploy/workload/static)
// is checked as written, and CheckRoutesAgree requires both to name the same
// proxy and the same NO_PROXY entries.
//
// The tests in this package run the checks on every kustomization (they are
// part of `make test`; `make deploy-check` runs them alone), and prove each
// check can fail by feeding it a deliberately broken object set.
package deploycheck
