package verify

import (
	"context"
	"errors"
	"fmt"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/opencontainers/go-digest"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Reaching registries as containerd does: hosts.toml, bounded
// requests, errors kept short.

// registries reaches registries as containerd does: hosts.toml mirrors,
// plain HTTP and CA files, and credentials from a docker config file.
type registries struct {
	hosts   docker.RegistryHosts
	keys    authn.Keychain
	timeout time.Duration
}

func newRegistries(s *policy.Signatures) (*registries, error) {
	r := &registries{timeout: time.Duration(s.Timeout), keys: authn.NewMultiKeychain()}
	if r.timeout <= 0 {
		r.timeout = policy.DefaultRegistryTimeout
	}
	r.hosts = config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(s.RegistryConfigPath)})
	if s.AuthFile != "" {
		kc, err := loadAuthFile(s.AuthFile)
		if err != nil {
			return nil, fmt.Errorf("signatures.authFile: %w", err)
		}
		r.keys = kc
	}
	return r, nil
}

// registryHosts lists the hosts of a registry from hosts.toml, each once
// (a hosts.toml may name its server as a [host] too).
func (r *registries) registryHosts(domain string) ([]docker.RegistryHost, error) {
	hosts, err := r.hosts(domain)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []docker.RegistryHost
	for _, h := range hosts {
		key := h.Scheme + "://" + h.Host + h.Path
		if !seen[key] {
			seen[key] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// conciseError keeps, of a failed registry request, what went wrong on
// the network ("dial tcp 127.0.0.1:5000: connect: connection refused")
// rather than every URL the client tried.
// isNetworkError reports whether a request failed for want of the host
// (refused, unreachable, timed out) rather than by its answer.
func isNetworkError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out")
}

func conciseError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out (signatures.timeout)")
	}
	return err
}

// fromHost reads the candidates of d from one registry host: cosign v2's
// .sig tag (sigtag.go), with att its .att tag (atttag.go), and cosign v3's
// bundle referrers (referrers.go: signatures and attestations).
func (r *registries) fromHost(ctx context.Context, h docker.RegistryHost, domain, path string, d digest.Digest, att bool) (out []candidate, err error) {
	if h.Path != "" && h.Path != "/v2" {
		return nil, fmt.Errorf("a registry host with path %q is not supported here", h.Path)
	}
	var opts []name.Option
	if h.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	repo, err := name.NewRepository(h.Host+"/"+path, opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*r.timeout)
	defer cancel()
	ropts := r.remoteOptions(ctx, h, domain)

	out, tagErr := readSigTag(repo, d, ropts)
	if tagErr != nil && isNetworkError(tagErr) {
		return out, tagErr // the host is unreachable: do not wait for it twice
	}
	if att {
		found, err := readAttTag(repo, d, ropts)
		out = append(out, found...)
		if err != nil && isNetworkError(err) {
			return out, err
		}
		if err != nil && tagErr == nil {
			tagErr = err
		} else if err != nil {
			tagErr = fmt.Errorf("%v; %w", tagErr, err)
		}
	}
	found, refErr := readReferrers(repo, d, ropts)
	out = append(out, found...)
	switch {
	case refErr != nil && tagErr != nil:
		return out, fmt.Errorf("%v; %w", tagErr, refErr)
	case refErr != nil:
		return out, refErr
	case tagErr != nil && len(out) == 0:
		return out, tagErr
	}
	return out, nil
}

// remoteOptions are go-containerregistry's options for one registry host:
// its transport (hosts.toml's scheme, CA files), a time limit per request,
// the credentials of the host or of the registry it mirrors, no retries.
func (r *registries) remoteOptions(ctx context.Context, h docker.RegistryHost, domain string) []remote.Option {
	base := http.RoundTripper(http.DefaultTransport)
	if h.Client != nil && h.Client.Transport != nil {
		base = h.Client.Transport
	}
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(&schemeTransport{scheme: h.Scheme, next: base, timeout: r.timeout}),
		remote.WithAuthFromKeychain(&aliasKeychain{keys: r.keys, domain: domain}),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
}

func readBlob(open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBlob+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBlob {
		return nil, fmt.Errorf("blob over %d bytes", maxBlob)
	}
	return data, nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// schemeTransport sends every request with the scheme hosts.toml gives
// (go-containerregistry picks http for loopback and private addresses on
// its own) and bounds each request.
type schemeTransport struct {
	scheme  string
	next    http.RoundTripper
	timeout time.Duration
}

func (t *schemeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.scheme != "" && req.URL.Scheme != t.scheme && (req.URL.Scheme == "http" || req.URL.Scheme == "https") {
		req = req.Clone(req.Context())
		req.URL.Scheme = t.scheme
	}
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.ContentLength > maxResponse {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("%s %s: response of %d bytes, more than the %d a signature look-up reads", req.Method, req.URL.Path, resp.ContentLength, maxResponse)
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel, left: maxResponse}
	return resp, nil
}

// cancelBody ends the request's context when the body is closed, and
// fails a body longer than maxResponse (a registry may not say how long).
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
	left   int64
}

func (b *cancelBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("response longer than %d bytes", maxResponse)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
