package proxy_test

// gRPC through TLS inspection (issue 17), with grpc-go as a test-only
// dependency: unary and bidirectional-streaming calls pass with their
// trailers, and a path rule denies one method before the origin sees it.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/egressd/egressd/acl"
)

// grpcOrigin implements the parts of grpc.testing.TestService the test
// calls, counting what reaches it.
type grpcOrigin struct {
	testpb.UnimplementedTestServiceServer
	empty, unary, duplex atomic.Int32
}

func (g *grpcOrigin) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	g.empty.Add(1)
	return &testpb.Empty{}, nil
}

func (g *grpcOrigin) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	g.unary.Add(1)
	grpc.SetTrailer(ctx, metadata.Pairs("x-origin-trailer", "kept"))
	if st := in.GetResponseStatus(); st != nil && st.Code != 0 {
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (g *grpcOrigin) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	g.duplex.Add(1)
	for {
		in, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

func TestGRPCThroughInspection(t *testing.T) {
	pki := newTrustSet(t)
	origin := &grpcOrigin{}
	cert := pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil)
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	testpb.RegisterTestServiceServer(gs, origin)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	target := "api.origin.test:" + portOf(t, ln.Addr().String())

	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}), withACL(func(c *acl.Config) {
		c.Tenants[0].Rules = append([]acl.RuleConfig{
			{Name: "no-empty-call", Action: "deny", Domains: []string{"api.origin.test"}, Paths: []string{"/grpc.testing.TestService/EmptyCall"}},
		}, c.Tenants[0].Rules...)
	}))
	cc, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pki.corpPool})),
		grpc.WithContextDialer(func(_ context.Context, addr string) (net.Conn, error) {
			c, br, err := openTunnel(s.addr, addr)
			if err != nil {
				return nil, err
			}
			if br.Buffered() > 0 {
				c.Close()
				return nil, errors.New("proxy sent bytes after the CONNECT response")
			}
			c.SetDeadline(time.Time{})
			return c, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := testpb.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("unary with trailers", func(t *testing.T) {
		var trailer metadata.MD
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("ping")}}, grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if string(resp.GetPayload().GetBody()) != "ping" {
			t.Errorf("payload %q, want ping", resp.GetPayload().GetBody())
		}
		if got := trailer.Get("x-origin-trailer"); len(got) != 1 || got[0] != "kept" {
			t.Errorf("trailer x-origin-trailer = %q, want kept", got)
		}
	})
	t.Run("origin's grpc-status is preserved", func(t *testing.T) {
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "origin says no"}})
		if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != "origin says no" {
			t.Errorf("error %v, want FailedPrecondition \"origin says no\" from the origin", err)
		}
	})
	t.Run("bidirectional streaming", func(t *testing.T) {
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each reply arrives before the next message is sent: both
		// directions really stream through the proxy.
		for i := range 5 {
			msg := []byte{'m', byte('0' + i)}
			if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: msg}}); err != nil {
				t.Fatal(err)
			}
			got, err := stream.Recv()
			if err != nil || string(got.GetPayload().GetBody()) != string(msg) {
				t.Fatalf("message %d: %v %q", i, err, got.GetPayload().GetBody())
			}
		}
		stream.CloseSend()
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("end of stream: %v, want EOF", err)
		}
	})
	t.Run("denied method", func(t *testing.T) {
		_, err := client.EmptyCall(ctx, &testpb.Empty{})
		st, _ := status.FromError(err)
		if st.Code() != codes.PermissionDenied {
			t.Fatalf("EmptyCall error %v, want PermissionDenied", err)
		}
		if n := origin.empty.Load(); n != 0 {
			t.Errorf("origin saw %d EmptyCalls, want 0", n)
		}
	})
	if n, d := origin.unary.Load(), origin.duplex.Load(); n != 2 || d != 1 {
		t.Errorf("origin served %d unary and %d duplex calls, want 2 and 1", n, d)
	}
	checkAccessFields(t, s.waitKind(t, "bumped", "api.origin.test", "/grpc.testing.TestService/EmptyCall"),
		map[string]string{"decision": "deny", "rule": "no-empty-call", "status": "403", "method": "POST", "tenant": demoTenant})
	checkAccessFields(t, s.waitKind(t, "bumped", "api.origin.test", "/grpc.testing.TestService/FullDuplexCall"),
		map[string]string{"decision": "allow", "status": "200", "tenant": demoTenant})
}
