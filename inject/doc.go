// Package inject is egressd's workload-side mutating admission webhook
// (`egressd-inject`). Pods carrying the opt-in label (default
// `network: filtered`) get HTTP_PROXY/HTTPS_PROXY/NO_PROXY and their
// lower-case twins in every container and init container, and optionally the
// corporate CA bundle mounted read-only from a ConfigMap with
// SSL_CERT_FILE/NODE_EXTRA_CA_CERTS/REQUESTS_CA_BUNDLE pointing at it.
//
// The mutation is a pure function from a decoded pod to an RFC 6902 patch
// (mutate.go), so it is table-tested without a server; the HTTP layer
// (review.go) only speaks admission.k8s.io/v1 AdmissionReview, and run.go
// serves it over TLS with a certificate reloaded from disk.
//
// See docs/inject.md for the configuration reference and install steps.
package inject
