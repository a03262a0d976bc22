// Package h2grpc makes gRPC calls to a local server (containerd) over one
// HTTP/2 connection on a unix socket, one call at a time, for processes
// that live for a few calls.
//
// grpc-go does the same with a resolver, a balancer, a connectivity state
// machine and a goroutine per connection, and protobuf decodes its
// messages through type descriptors it first builds: in a process that
// starts, makes two calls and exits, that costs about 5 ms of CPU (a
// third of what `shim start` spends on a container) against 1 ms here.
// The frames and the header compression are golang.org/x/net/http2's; the
// caller encodes and decodes the messages (with protowire).
//
// What it does not do, because containerd's API over a local socket does
// not need it: TLS, compression, client streaming, concurrent calls,
// retries and reconnection.
package h2grpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultMaxResponse bounds the bytes of one call's response messages
// (containerd's own default maximum message size).
const DefaultMaxResponse = 16 << 20

// maxRequest bounds a request message: it must fit the server's initial
// stream window (HTTP/2's default), as this client does not wait for
// WINDOW_UPDATEs. containerd's requests here are a few names.
const maxRequest = 65535 - 5

// window is the flow-control window this client grants the server, per
// stream and for the connection: larger than any response it accepts, so
// the server never waits for a WINDOW_UPDATE within a call.
const window = 1 << 30

// Conn is one HTTP/2 connection to a gRPC server. Calls on it run one at a
// time; a Conn is safe for use by several goroutines.
type Conn struct {
	// MaxResponse bounds the response of each call; 0 means
	// DefaultMaxResponse.
	MaxResponse int

	mu     sync.Mutex
	nc     net.Conn
	fr     *http2.Framer
	wbuf   bytes.Buffer // frames not yet written to nc
	hbuf   bytes.Buffer // the header block being encoded
	enc    *hpack.Encoder
	stream uint32 // id of the next stream
	// maxFrame is the largest frame the server accepts.
	maxFrame uint32
	// err, once set, makes every later call fail: the connection is in
	// an unknown state (a call was cut off, the server went away).
	err error
}

// Dial connects to the gRPC server listening on the unix socket at address
// ("unix://" prefix optional).
func Dial(ctx context.Context, address string) (*Conn, error) {
	path := strings.TrimPrefix(address, "unix://")
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, stream: 1, maxFrame: 16384}
	c.fr = http2.NewFramer(&c.wbuf, nc)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.enc = hpack.NewEncoder(&c.hbuf)
	// The preface, our settings and the connection's window go out with
	// the first call's request, in one write.
	c.wbuf.WriteString(http2.ClientPreface)
	if err := c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: window},
	); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.fr.WriteWindowUpdate(0, window-65535); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection; a call under way fails.
func (c *Conn) Close() error {
	return c.nc.Close()
}

// Invoke calls method ("/package.Service/Method") with the encoded request
// message req and the metadata md (lower-case keys), and returns the
// encoded response messages: one for a unary method, any number for a
// server-streaming one. A gRPC error status comes back as a grpc/status
// error (status.FromError, errdefs' errgrpc.ToNative understand it).
func (c *Conn) Invoke(ctx context.Context, method string, md map[string]string, req []byte) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	// The context's deadline and cancellation cut the socket's reads and
	// writes short; the connection is then unusable (c.err).
	deadline, _ := ctx.Deadline()
	if err := c.nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	cut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.nc.SetDeadline(time.Unix(1, 0))
		close(cut)
	})
	defer func() {
		// A cut that has begun must end before the next call sets its own
		// deadline, or it would land on that call.
		if !stop() {
			<-cut
		}
	}()

	msgs, err := c.call(method, md, req, deadline)
	if err != nil {
		var abandoned *abandonedError
		if errors.As(err, &abandoned) {
			// The server may still be sending this call's response: the
			// connection is not usable for another call.
			c.err = fmt.Errorf("h2grpc: connection unusable after %s: %w", method, abandoned.err)
			return nil, abandoned.err
		}
		var st interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &st) {
			// Not an answer from the server: a broken or cut-off connection.
			c.err = fmt.Errorf("h2grpc: connection unusable after %s: %w", method, err)
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, status.FromContextError(ctxErr).Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, status.Error(codes.DeadlineExceeded, err.Error())
			}
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return nil, err
	}
	return msgs, nil
}

// abandonedError is a call given up while the server may still be
// answering it.
type abandonedError struct{ err error }

func (e *abandonedError) Error() string { return e.err.Error() }

func (c *Conn) call(method string, md map[string]string, req []byte, deadline time.Time) ([][]byte, error) {
	if len(req) > maxRequest {
		return nil, status.Errorf(codes.InvalidArgument, "%s: request of %d bytes is larger than the %d this client sends", method, len(req), maxRequest)
	}
	id := c.stream
	c.stream += 2
	if err := c.writeRequest(id, method, md, req, deadline); err != nil {
		return nil, err
	}
	max := c.MaxResponse
	if max <= 0 {
		max = DefaultMaxResponse
	}
	var (
		body     []byte
		consumed uint32
		headers  bool // response headers seen
	)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if err := f.ForeachSetting(func(st http2.Setting) error {
				if err := st.Valid(); err != nil {
					return err
				}
				switch st.ID {
				case http2.SettingMaxFrameSize:
					c.maxFrame = st.Val
				case http2.SettingHeaderTableSize:
					c.enc.SetMaxDynamicTableSizeLimit(st.Val)
				}
				return nil
			}); err != nil {
				return nil, err
			}
			if err := c.fr.WriteSettingsAck(); err != nil {
				return nil, err
			}
			if err := c.flush(); err != nil {
				return nil, err
			}
		case *http2.PingFrame:
			if f.IsAck() {
				continue
			}
			if err := c.fr.WritePing(true, f.Data); err != nil {
				return nil, err
			}
			if err := c.flush(); err != nil {
				return nil, err
			}
		case *http2.GoAwayFrame:
			if f.LastStreamID < id {
				return nil, fmt.Errorf("server going away (%v) before answering", f.ErrCode)
			}
			// The server finishes this call, then closes: no more calls.
			c.err = fmt.Errorf("h2grpc: server going away (%v)", f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID != id {
				continue
			}
			// Only this call ends; the connection stays usable. A server
			// cancels a call whose grpc-timeout has passed.
			switch {
			case f.ErrCode == http2.ErrCodeCancel && !deadline.IsZero() && time.Until(deadline) < 10*time.Millisecond:
				return nil, status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded", method)
			case f.ErrCode == http2.ErrCodeCancel:
				return nil, status.Errorf(codes.Canceled, "%s: cancelled by the server", method)
			case f.ErrCode == http2.ErrCodeRefusedStream:
				return nil, status.Errorf(codes.Unavailable, "%s: refused by the server", method)
			default:
				return nil, status.Errorf(codes.Internal, "%s: reset by the server: %v", method, f.ErrCode)
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			consumed += f.Header().Length // padding counts too
			if len(body)+len(f.Data()) > max {
				return nil, &abandonedError{status.Errorf(codes.ResourceExhausted, "%s: response larger than %d bytes", method, max)}
			}
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return nil, status.Errorf(codes.Internal, "%s: the response ended without a status", method)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if !headers {
				headers = true
				if s := f.PseudoValue("status"); s != "200" {
					err := status.Errorf(codes.Unknown, "%s: HTTP status %s", method, s)
					if f.StreamEnded() {
						return nil, err
					}
					return nil, &abandonedError{err}
				}
			}
			if !f.StreamEnded() {
				continue
			}
			// Trailers (or a trailers-only answer): the call's status.
			code, msg := codes.Unknown, ""
			found := false
			for _, h := range f.RegularFields() {
				switch h.Name {
				case "grpc-status":
					n, err := strconv.ParseUint(h.Value, 10, 32)
					if err == nil {
						code, found = codes.Code(n), true
					}
				case "grpc-message":
					msg = decodeMessage(h.Value)
				}
			}
			// Best effort: a server that closes the connection right after
			// its last answer (a graceful stop) has still answered.
			if err := c.releaseWindow(consumed); err != nil && c.err == nil {
				c.err = fmt.Errorf("h2grpc: connection unusable: %w", err)
			}
			if !found {
				return nil, status.Errorf(codes.Unknown, "%s: answer without grpc-status", method)
			}
			if code != codes.OK {
				return nil, status.Error(code, msg)
			}
			return splitMessages(method, body)
		}
	}
}

// writeRequest writes the request's HEADERS and DATA frames (and what
// Dial queued) in one write.
func (c *Conn) writeRequest(id uint32, method string, md map[string]string, req []byte, deadline time.Time) error {
	c.hbuf.Reset()
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method},
		{Name: ":authority", Value: "localhost"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
		{Name: "user-agent", Value: "h2grpc"},
	}
	if !deadline.IsZero() {
		ms := time.Until(deadline).Milliseconds()
		if ms < 1 {
			ms = 1
		}
		fields = append(fields, hpack.HeaderField{Name: "grpc-timeout", Value: grpcTimeout(ms)})
	}
	for k, v := range md {
		fields = append(fields, hpack.HeaderField{Name: strings.ToLower(k), Value: v})
	}
	for _, f := range fields {
		if err := c.enc.WriteField(f); err != nil {
			return err
		}
	}
	if c.hbuf.Len() > int(c.maxFrame) {
		return fmt.Errorf("request headers of %d bytes do not fit a frame", c.hbuf.Len())
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	msg := make([]byte, 5+len(req))
	binary.BigEndian.PutUint32(msg[1:], uint32(len(req)))
	copy(msg[5:], req)
	for len(msg) > int(c.maxFrame) {
		if err := c.fr.WriteData(id, false, msg[:c.maxFrame]); err != nil {
			return err
		}
		msg = msg[c.maxFrame:]
	}
	if err := c.fr.WriteData(id, true, msg); err != nil {
		return err
	}
	return c.flush()
}

// grpcTimeout encodes a timeout of ms milliseconds as grpc-timeout does:
// at most 8 digits, in the finest unit that fits.
func grpcTimeout(ms int64) string {
	for _, u := range []struct {
		unit string
		ms   int64
	}{{"m", 1}, {"S", 1000}, {"M", 60 * 1000}, {"H", 3600 * 1000}} {
		if v := ms / u.ms; v <= 99999999 {
			return strconv.FormatInt(v, 10) + u.unit
		}
	}
	return "99999999H"
}

func (c *Conn) flush() error {
	_, err := c.nc.Write(c.wbuf.Bytes())
	c.wbuf.Reset()
	return err
}

// releaseWindow gives the connection window back what a call consumed, so
// that a long run of calls never exhausts it.
func (c *Conn) releaseWindow(n uint32) error {
	if n == 0 {
		return nil
	}
	if err := c.fr.WriteWindowUpdate(0, n); err != nil {
		return err
	}
	return c.flush()
}

// splitMessages splits a response body into its length-prefixed messages.
func splitMessages(method string, body []byte) ([][]byte, error) {
	var msgs [][]byte
	for len(body) > 0 {
		if len(body) < 5 {
			return nil, status.Errorf(codes.Internal, "%s: truncated message", method)
		}
		if body[0] != 0 {
			return nil, status.Errorf(codes.Internal, "%s: compressed message, and no compression was offered", method)
		}
		n := binary.BigEndian.Uint32(body[1:5])
		if uint64(n) > uint64(len(body)-5) {
			return nil, status.Errorf(codes.Internal, "%s: truncated message", method)
		}
		msgs = append(msgs, body[5:5+n])
		body = body[5+n:]
	}
	return msgs, nil
}

// decodeMessage undoes the percent-encoding of grpc-message.
func decodeMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}
