package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/hardened-runtime/hardened/policy"
)

// Where cosign puts signatures.
const (
	// SimpleSigningMediaType is the layer media type of a classic
	// sha256-<hex>.sig image.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds a layer's base64 signature.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// BundleMediaType is the artifact type of a Sigstore bundle referrer.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// CosignSignPredicate is the predicate type of cosign's signature
	// statement (cosign sign with the bundle format).
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// bundleMediaTypes are the bundle artifact types accepted as referrers.
var bundleMediaTypes = map[string]bool{
	BundleMediaType: true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.dev.sigstore.bundle.v0.2+json":        true,
	"application/vnd.dev.sigstore.bundle+json;version=0.2": true,
}

// Bounds on what a registry may make the verifier read.
const (
	maxSignatures = 32
	// maxReferrers bounds the referrer manifests read per digest.
	maxReferrers = 64
	maxBlob      = 1 << 20
	// maxResponse bounds any registry response: manifests, indexes,
	// signature payloads and bundles are a few KiB.
	maxResponse = 4 << 20
)

// kind of a candidate signature.
const (
	kindClassic = "classic"
	kindBundle  = "bundle"
)

// candidate is one signature found for a digest.
type candidate struct {
	kind  string
	where string
	// classic: the simple signing payload and its signature.
	payload, sig []byte
	// bundle: the bundle JSON.
	bundle []byte
}

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

// collect finds the signatures for digest d of the image: those of the
// local signature directory (read by the caller), then each registry host of the image's
// registry (mirrors first) until one has any. err is set when a host
// could not be asked; it is reported only if no signature is accepted.
func (v *Verifier) collect(ctx context.Context, named reference.Named, d digest.Digest, local []candidate, localErr error) ([]candidate, error) {
	var out []candidate
	var errs []string
	if localErr != nil {
		errs = append(errs, localErr.Error())
	}
	out = append(out, local...)

	domain := reference.Domain(named)
	path := reference.Path(named)
	hosts, err := v.reg.registryHosts(domain)
	if err != nil {
		return out, fmt.Errorf("registry configuration for %s in %s: %v", domain, v.sigs.RegistryConfigPath, err)
	}
	looked := []string{}
	if v.sigs.SignatureDir != "" {
		looked = append(looked, v.sigs.SignatureDir+"/"+tagFor(d))
	}
	for _, h := range hosts {
		if h.Capabilities&docker.HostCapabilityPull == 0 {
			continue
		}
		where := h.Scheme + "://" + h.Host + "/" + path
		if v.down[h.Host] {
			errs = append(errs, where+": unreachable (see above)")
			continue
		}
		found, err := v.reg.fromHost(ctx, h, domain, path, d)
		looked = append(looked, where)
		out = append(out, found...)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", where, conciseError(err)))
			if isNetworkError(err) {
				v.down[h.Host] = true
			}
			continue
		}
		if len(found) > 0 {
			break
		}
	}
	if len(out) > maxSignatures {
		out = out[:maxSignatures]
	}
	if len(errs) > 0 {
		return out, errors.New(strings.Join(errs, "; "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("looked for tag %s.sig and %s referrers in %s", tagFor(d), BundleMediaType, strings.Join(looked, ", "))
	}
	return out, nil
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

func tagFor(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() }

// fromHost reads the classic .sig tag and the bundle referrers of d from
// one registry host.
func (r *registries) fromHost(ctx context.Context, h docker.RegistryHost, domain, path string, d digest.Digest) (out []candidate, err error) {
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
	base := http.RoundTripper(http.DefaultTransport)
	if h.Client != nil && h.Client.Transport != nil {
		base = h.Client.Transport
	}
	ctx, cancel := context.WithTimeout(ctx, 2*r.timeout)
	defer cancel()
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(&schemeTransport{scheme: h.Scheme, next: base, timeout: r.timeout}),
		remote.WithAuthFromKeychain(&aliasKeychain{keys: r.keys, domain: domain}),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}

	// cosign v2: the sha256-<hex>.sig tag.
	tag := repo.Tag(tagFor(d) + ".sig")
	img, err := remote.Image(tag, ropts...)
	var tagErr error
	switch {
	case isNotFound(err):
	case err != nil:
		tagErr = fmt.Errorf("read tag %s: %w", tag.TagStr(), conciseError(err))
	default:
		found, err := classicFromImage(img, tag.TagStr())
		if err != nil {
			tagErr = err
		}
		out = append(out, found...)
	}
	if tagErr != nil && isNetworkError(tagErr) {
		return out, tagErr // the host is unreachable: do not wait for it twice
	}

	// cosign v3: Sigstore bundles as referrers (ggcr falls back to the
	// sha256-<hex> tag schema when the registry has no referrers API).
	idx, err := remote.Referrers(repo.Digest(d.String()), ropts...)
	if err != nil && !isNotFound(err) {
		if tagErr != nil {
			return out, fmt.Errorf("%v; read referrers of %s: %w", tagErr, short(d), conciseError(err))
		}
		return out, fmt.Errorf("read referrers of %s: %w", short(d), conciseError(err))
	}
	if tagErr != nil {
		defer func() {
			if len(out) == 0 && err == nil {
				err = tagErr
			}
		}()
	}
	if err == nil {
		im, err := idx.IndexManifest()
		if err != nil {
			return out, fmt.Errorf("read referrers of %s: %w", short(d), err)
		}
		seen := map[v1.Hash]bool{}
		read := 0
		var skipped []string
		for _, m := range im.Manifests {
			// The registry's filter is not trusted (some ignore it).
			// Some registries list a referrer's config media type as its
			// artifact type: look at the manifest of those.
			maybe := m.ArtifactType == "" || m.ArtifactType == "application/vnd.oci.empty.v1+json"
			if (!bundleMediaTypes[m.ArtifactType] && !maybe) || seen[m.Digest] || m.Size > maxBlob {
				continue
			}
			if len(out) >= maxSignatures || read >= maxReferrers {
				break
			}
			seen[m.Digest] = true
			read++
			b, err := bundleFromReferrer(repo, m, ropts)
			if errors.Is(err, errNotBundle) && maybe {
				continue
			}
			if err != nil {
				// A dangling or broken entry (common in the tag schema's
				// index) does not hide the others.
				skipped = append(skipped, fmt.Sprintf("referrer %s: %v", short(digest.Digest(m.Digest.String())), conciseError(err)))
				continue
			}
			out = append(out, candidate{kind: kindBundle, where: "referrer " + short(digest.Digest(m.Digest.String())), bundle: b})
		}
		if len(out) == 0 && len(skipped) > 0 {
			return out, errors.New(strings.Join(skipped, "; "))
		}
	}
	return out, nil
}

func classicFromImage(img v1.Image, tag string) ([]candidate, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read tag %s: %w", tag, err)
	}
	var out []candidate
	for i, l := range m.Layers {
		if i >= maxSignatures {
			break
		}
		where := fmt.Sprintf("tag %s layer %d", tag, i)
		b64, ok := l.Annotations[SignatureAnnotation]
		if !ok || l.MediaType != SimpleSigningMediaType {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			out = append(out, candidate{kind: kindClassic, where: where})
			continue
		}
		if l.Size > maxBlob {
			return nil, fmt.Errorf("%s: payload of %d bytes", where, l.Size)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		payload, err := readBlob(layer.Compressed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, candidate{kind: kindClassic, where: where, payload: payload, sig: sig})
	}
	return out, nil
}

func bundleFromReferrer(repo name.Repository, m v1.Descriptor, ropts []remote.Option) ([]byte, error) {
	img, err := remote.Image(repo.Digest(m.Digest.String()), ropts...)
	if err != nil {
		return nil, err
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if mf.ArtifactType != "" && !bundleMediaTypes[mf.ArtifactType] {
		return nil, errNotBundle
	}
	for _, l := range mf.Layers {
		if !bundleMediaTypes[string(l.MediaType)] {
			continue
		}
		if l.Size > maxBlob {
			return nil, fmt.Errorf("bundle of %d bytes", l.Size)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		return readBlob(layer.Compressed)
	}
	return nil, errNotBundle
}

var errNotBundle = errors.New("no bundle layer")

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

// aliasKeychain resolves credentials by the image's own registry name, so
// that a mirror is asked with the credentials configured for the registry
// it mirrors when it has none of its own.
type aliasKeychain struct {
	keys   authn.Keychain
	domain string
}

func (k *aliasKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	a, err := k.keys.Resolve(res)
	if err != nil || a != authn.Anonymous || res.RegistryStr() == k.domain {
		return a, err
	}
	reg, err := name.NewRegistry(k.domain)
	if err != nil {
		return a, nil
	}
	return k.keys.Resolve(reg)
}

// fileKeychain is a docker config.json's "auths".
type fileKeychain map[string]authn.AuthConfig

func loadAuthFile(file string) (fileKeychain, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Auths map[string]authn.AuthConfig `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("%s: not a docker config.json: %v", file, err)
	}
	kc := fileKeychain{}
	for host, a := range cfg.Auths {
		host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
		host, _, _ = strings.Cut(host, "/")
		if host == "index.docker.io" || host == "registry-1.docker.io" {
			host = "docker.io"
		}
		kc[host] = a
	}
	return kc, nil
}

func (kc fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	host := res.RegistryStr()
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	if a, ok := kc[host]; ok {
		return authn.FromConfig(a), nil
	}
	return authn.Anonymous, nil
}

// readSignatureDir reads the local signatures of d: <dir>/sha256-<hex>/
// with *.sigstore.json or *.bundle.json bundles and NAME.sig (base64, as
// cosign --output-signature writes it) with NAME.payload.
func readSignatureDir(dir string, d digest.Digest) ([]candidate, error) {
	if dir == "" {
		return nil, nil
	}
	sub := filepath.Join(dir, tagFor(d))
	entries, err := os.ReadDir(sub)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature directory: %v", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []candidate
	for _, n := range names {
		file := filepath.Join(sub, n)
		switch {
		case strings.HasSuffix(n, ".sigstore.json") || strings.HasSuffix(n, ".bundle.json"):
			data, err := readSmall(file)
			if err != nil {
				return out, err
			}
			out = append(out, candidate{kind: kindBundle, where: "file " + file, bundle: data})
		case strings.HasSuffix(n, ".sig"):
			raw, err := readSmall(file)
			if err != nil {
				return out, err
			}
			payload, err := readSmall(strings.TrimSuffix(file, ".sig") + ".payload")
			if err != nil {
				return out, fmt.Errorf("signature %s has no payload: %v", file, err)
			}
			sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw)))
			if err != nil {
				sig = raw
			}
			out = append(out, candidate{kind: kindClassic, where: "file " + file, payload: payload, sig: sig})
		}
	}
	return out, nil
}

func readSmall(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBlob(func() (io.ReadCloser, error) { return f, nil })
}

// Resolve asks the image's registry (through hosts.toml, as containerd
// would pull it) which digest a reference points at, and for an index the
// manifest of this node's platform: for `hardenctl verify IMAGE:TAG`.
func (v *Verifier) Resolve(ctx context.Context, image string) (Image, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return Image{}, fmt.Errorf("image %q: %v", image, err)
	}
	img := Image{Name: image}
	if c, ok := named.(reference.Canonical); ok {
		img.Digest = c.Digest()
	}
	domain, path := reference.Domain(named), reference.Path(named)
	hosts, err := v.reg.registryHosts(domain)
	if err != nil {
		return img, err
	}
	var errs []string
	for _, h := range hosts {
		if h.Capabilities&docker.HostCapabilityResolve == 0 && img.Digest == "" {
			continue
		}
		var opts []name.Option
		if h.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
		ref := h.Host + "/" + path
		if img.Digest != "" {
			ref += "@" + img.Digest.String()
		} else if t, ok := named.(reference.Tagged); ok {
			ref += ":" + t.Tag()
		} else {
			ref += ":latest"
		}
		r, err := name.ParseReference(ref, opts...)
		if err != nil {
			return img, err
		}
		base := http.RoundTripper(http.DefaultTransport)
		if h.Client != nil && h.Client.Transport != nil {
			base = h.Client.Transport
		}
		cctx, cancel := context.WithTimeout(ctx, 2*v.reg.timeout)
		desc, err := remote.Get(r, remote.WithContext(cctx), remote.WithTransport(&schemeTransport{scheme: h.Scheme, next: base, timeout: v.reg.timeout}),
			remote.WithAuthFromKeychain(&aliasKeychain{keys: v.reg.keys, domain: domain}), remote.WithRetryBackoff(remote.Backoff{Steps: 1}))
		if err != nil {
			cancel()
			errs = append(errs, fmt.Sprintf("%s://%s: %v", h.Scheme, h.Host, conciseError(err)))
			continue
		}
		img.Digest = digest.Digest(desc.Digest.String())
		if desc.MediaType.IsIndex() {
			if idx, err := desc.ImageIndex(); err == nil {
				if im, err := idx.IndexManifest(); err == nil {
					for _, m := range im.Manifests {
						if m.Platform != nil && m.Platform.OS == runtime.GOOS && m.Platform.Architecture == runtime.GOARCH {
							img.PlatformDigest = digest.Digest(m.Digest.String())
							break
						}
					}
				}
			}
		}
		cancel()
		return img, nil
	}
	if len(errs) == 0 {
		return img, fmt.Errorf("no registry host of %s may resolve references", domain)
	}
	return img, fmt.Errorf("resolve %s: %s", image, strings.Join(errs, "; "))
}
