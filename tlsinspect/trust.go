package tlsinspect

import "strings"

// TrustInstructions is the text `egressd ca init` prints: how a workload
// pod comes to trust the inspection CA at certPath. The key never leaves
// the proxy's Secret, so only the certificate is published.
//
// The bundle matters: SSL_CERT_FILE and REQUESTS_CA_BUNDLE replace a
// client's trust store rather than extend it, so pointing them at the CA
// alone would break every spliced (uninspected) destination.
func TrustInstructions(certPath string) string {
	return strings.ReplaceAll(trustTemplate, "{{CERT}}", certPath)
}

const trustTemplate = `Inspection CA certificate: {{CERT}}
Keep ca.key in a Secret mounted only into egressd (tls_inspection.ca_key).
Workloads need the certificate only.

1. Publish the certificate in each workload namespace:

   kubectl -n WORKLOAD_NS create configmap egressd-ca --from-file=egressd-ca.crt={{CERT}}

2a. Without changing the image: build a bundle of the system roots plus the
    CA in an init container, then point the clients at it. SSL_CERT_FILE
    and REQUESTS_CA_BUNDLE REPLACE the trust store, so they get the bundle;
    NODE_EXTRA_CA_CERTS ADDS to Node's roots, so it gets the CA alone.

   spec:
     initContainers:
     - name: egressd-trust
       image: SAME_IMAGE_AS_THE_APP   # any image with /etc/ssl/certs/ca-certificates.crt
       command: ["sh", "-c", "cat /etc/ssl/certs/ca-certificates.crt /egressd-ca/egressd-ca.crt > /trust/ca-bundle.crt"]
       volumeMounts:
       - {name: egressd-ca, mountPath: /egressd-ca, readOnly: true}
       - {name: trust, mountPath: /trust}
     containers:
     - name: app
       env:
       - {name: SSL_CERT_FILE, value: /trust/ca-bundle.crt}          # Go, OpenSSL, curl, Ruby, Python ssl
       - {name: REQUESTS_CA_BUNDLE, value: /trust/ca-bundle.crt}     # Python requests (replaces certifi)
       - {name: NODE_EXTRA_CA_CERTS, value: /egressd-ca/egressd-ca.crt}  # Node.js
       volumeMounts:
       - {name: egressd-ca, mountPath: /egressd-ca, readOnly: true}
       - {name: trust, mountPath: /trust, readOnly: true}
     volumes:
     - {name: egressd-ca, configMap: {name: egressd-ca}}
     - {name: trust, emptyDir: {}}

2b. Or update the distribution trust store (Debian, Ubuntu, Alpine) in an
    init container and share the result:

     initContainers:
     - name: egressd-trust
       image: SAME_IMAGE_AS_THE_APP   # must contain update-ca-certificates
       command: ["sh", "-c", "cp /egressd-ca/egressd-ca.crt /usr/local/share/ca-certificates/ && update-ca-certificates && cp -a /etc/ssl/certs/. /shared-certs/"]
       volumeMounts:
       - {name: egressd-ca, mountPath: /egressd-ca, readOnly: true}
       - {name: certs, mountPath: /shared-certs}
     containers:
     - name: app
       volumeMounts:
       - {name: certs, mountPath: /etc/ssl/certs, readOnly: true}
     volumes:
     - {name: egressd-ca, configMap: {name: egressd-ca}}
     - {name: certs, emptyDir: {}}

    Or bake it into the image: COPY egressd-ca.crt /usr/local/share/ca-certificates/
    then RUN update-ca-certificates.

Java keeps its own keystore: import the certificate with keytool -importcert.
Clients that pin certificates never accept a minted one: list their hosts in
the tenant's tls_inspection.splice.
`
