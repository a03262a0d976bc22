package h2grpc

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec passes messages through as bytes, so that the test server can
// answer any method without generated types.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// server is a grpc-go server on a unix socket, answering every method with
// handle.
func server(t *testing.T, handle func(method string, stream grpc.ServerStream, req []byte) error) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		var req []byte
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		return handle(method, stream, req)
	}))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return "unix://" + sock
}

func dial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(stream grpc.ServerStream, b []byte) error { return stream.SendMsg(&b) }

func TestInvokeUnary(t *testing.T) {
	addr := server(t, func(method string, stream grpc.ServerStream, req []byte) error {
		md, _ := metadata.FromIncomingContext(stream.Context())
		if _, ok := stream.Context().Deadline(); !ok {
			return status.Error(codes.InvalidArgument, "no deadline arrived")
		}
		return send(stream, []byte(method+"|"+strings.Join(md.Get("containerd-namespace"), ",")+"|"+string(req)))
	})
	c := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, req := range []string{"a", "", strings.Repeat("x", 40000)} { // the last one spans frames
		msgs, err := c.Invoke(ctx, "/test.S/Get", map[string]string{"containerd-namespace": "k8s.io"}, []byte(req))
		if err != nil {
			t.Fatalf("Invoke(%.10q) = %v", req, err)
		}
		if want := "/test.S/Get|k8s.io|" + req; len(msgs) != 1 || string(msgs[0]) != want {
			t.Fatalf("Invoke(%.10q) = %d messages, %.40q, want %.40q", req, len(msgs), msgs, want)
		}
	}
}

func TestInvokeStreamAndLarge(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB: past every default window
	addr := server(t, func(method string, stream grpc.ServerStream, req []byte) error {
		if method == "/test.S/Big" {
			return send(stream, big)
		}
		for i := range 5 {
			if err := send(stream, []byte{byte(i)}); err != nil {
				return err
			}
		}
		return send(stream, nil) // an empty message counts too
	})
	c := dial(t, addr)
	ctx := context.Background()
	for range 3 { // the connection's window is given back after each call
		msgs, err := c.Invoke(ctx, "/test.S/Big", nil, nil)
		if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0], big) {
			t.Fatalf("Invoke(Big) = %d messages, %v; want the 3 MiB message", len(msgs), err)
		}
	}
	msgs, err := c.Invoke(ctx, "/test.S/Read", nil, nil)
	if err != nil || len(msgs) != 6 || msgs[4][0] != 4 || len(msgs[5]) != 0 {
		t.Fatalf("Invoke(Read) = %v, %v; want 6 messages 0..4 and an empty one", msgs, err)
	}
}

func TestInvokeStatus(t *testing.T) {
	msg := `container "a b" not found: 100% ümlaut`
	addr := server(t, func(method string, stream grpc.ServerStream, req []byte) error {
		return status.Error(codes.NotFound, msg)
	})
	c := dial(t, addr)
	for range 2 { // an error status leaves the connection usable
		_, err := c.Invoke(context.Background(), "/test.S/Get", nil, nil)
		if s, _ := status.FromError(err); s.Code() != codes.NotFound || s.Message() != msg {
			t.Fatalf("Invoke = %v, want NotFound %q", err, msg)
		}
	}
}

func TestInvokeTooLarge(t *testing.T) {
	addr := server(t, func(method string, stream grpc.ServerStream, req []byte) error {
		return send(stream, make([]byte, 4096))
	})
	c := dial(t, addr)
	c.MaxResponse = 1024
	_, err := c.Invoke(context.Background(), "/test.S/Get", nil, nil)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Invoke = %v, want ResourceExhausted", err)
	}
	// The rest of that answer may still come: no other call on the connection.
	if _, err := c.Invoke(context.Background(), "/test.S/Get", nil, nil); err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("a call after an abandoned one = %v, want the connection refused", err)
	}
	if _, err := dial(t, addr).Invoke(context.Background(), "/test.S/Get", nil, make([]byte, 70000)); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Invoke with a 70000-byte request = %v, want InvalidArgument", err)
	}
}

func TestGRPCTimeout(t *testing.T) {
	for ms, want := range map[int64]string{1: "1m", 99999999: "99999999m", 100000000: "100000S", 1 << 50: "99999999H", 4e11: "6666666M"} {
		if got := grpcTimeout(ms); got != want {
			t.Errorf("grpcTimeout(%d) = %q, want %q", ms, got, want)
		}
	}
}

func TestInvokeDeadlineAndCancel(t *testing.T) {
	addr := server(t, func(method string, stream grpc.ServerStream, req []byte) error {
		<-stream.Context().Done()
		return stream.Context().Err()
	})
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want codes.Code
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, codes.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, codes.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.Invoke(ctx, "/test.S/Hang", nil, nil)
			if status.Code(err) != tc.want {
				t.Fatalf("Invoke = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Invoke returned after %v", d)
			}
		})
	}
}

func TestServerGone(t *testing.T) {
	if _, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("Dial to a missing socket succeeded")
	}
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { // accept, read a little, hang up
		nc, err := l.Accept()
		if err == nil {
			nc.Read(make([]byte, 100))
			nc.Close()
		}
	}()
	c := dial(t, sock)
	_, err = c.Invoke(context.Background(), "/test.S/Get", nil, nil)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Invoke = %v, want Unavailable", err)
	}
}

func TestServerSilent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accept and never answer
		nc, err := l.Accept()
		if err == nil {
			t.Cleanup(func() { nc.Close() })
		}
	}()
	c := dial(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(ctx, "/test.S/Get", nil, nil); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Invoke = %v, want DeadlineExceeded", err)
	}
	// The connection is in an unknown state: no more calls on it.
	_, err = c.Invoke(context.Background(), "/test.S/Get", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "unusable") {
		t.Fatalf("a call after a cut-off call = %v, want the connection refused", err)
	}
}
