package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/egressd/egressd/bench/goproxybase"
	"github.com/egressd/egressd/bench/load"
	"github.com/egressd/egressd/bench/relay"
)

func cmdRelay(args []string) int {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:3130", "listen address")
	origin := fs.String("origin", "", "fixed origin address, host:port")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *origin == "" {
		fmt.Fprintln(os.Stderr, "relay: --origin is required")
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay: listen: %v\n", err)
		return 1
	}
	r := relay.New(*origin)
	go func() {
		waitForSignal()
		_ = ln.Close()
	}()
	_ = r.Serve(ln)
	_ = r.Close()
	return 0
}

func cmdGoproxy(args []string) int {
	fs := flag.NewFlagSet("goproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:3131", "listen address")
	caCert := fs.String("mitm-ca-cert", "", "inspect every CONNECT with this CA (PEM); default: no inspection")
	caKey := fs.String("mitm-ca-key", "", "key of --mitm-ca-cert")
	upstreamCA := fs.String("upstream-ca", "", "PEM roots that verify the origin when inspecting")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var opts goproxybase.Options
	if *caCert != "" {
		ca, err := tls.LoadX509KeyPair(*caCert, *caKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "goproxy: load MITM CA: %v\n", err)
			return 2
		}
		opts.MITMCA = &ca
		if *upstreamCA != "" {
			if opts.UpstreamRoots, err = load.ReadCertPool(*upstreamCA); err != nil {
				fmt.Fprintf(os.Stderr, "goproxy: %v\n", err)
				return 2
			}
		} else {
			opts.UpstreamRoots = x509.NewCertPool() // verify against nothing: fail closed
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "goproxy: listen: %v\n", err)
		return 1
	}
	srv, done := goproxybase.Serve(ln, goproxybase.New(opts))
	go func() {
		waitForSignal()
		_ = srv.Close()
	}()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func cmdGencert(args []string) int {
	fs := flag.NewFlagSet("gencert", flag.ContinueOnError)
	certFile := fs.String("cert", "", "certificate PEM to write")
	keyFile := fs.String("key", "", "key PEM to write")
	ca := fs.Bool("ca", false, "a TLS-inspection CA instead of the origin certificate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *certFile == "" || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "gencert: --cert and --key are required")
		return 2
	}
	gen := load.OriginCertificate
	if *ca {
		gen = load.NewCA
	}
	cert, err := gen()
	if err == nil {
		err = load.WriteCertificate(cert, *certFile, *keyFile)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gencert: %v\n", err)
		return 1
	}
	return 0
}

// waitForSignal returns on SIGINT or SIGTERM (compare.sh's trap sends TERM).
func waitForSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	signal.Stop(ch)
}
