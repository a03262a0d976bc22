package signtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RegistryOptions configure NewRegistry.
type RegistryOptions struct {
	// NoReferrers makes the referrers API (GET /v2/<name>/referrers/<digest>)
	// answer 404, as registries before OCI 1.1 do: clients then use the
	// referrers tag schema (ReferrersTag). Default: the API is served.
	NoReferrers bool
	// Log, when set, gets one line per request: method, URL, status,
	// response bytes, duration.
	Log io.Writer
}

// NewRegistry returns an in-memory OCI registry (go-containerregistry's
// pkg/registry) for tests, to serve with net/http/httptest or a listener.
//
// Its referrers listing is what the distribution spec asks for, which
// go-containerregistry's alone is not: each entry's artifactType is the
// referrer manifest's artifactType (its config media type only when it has
// none; go-containerregistry's registry always reports the config media
// type, application/vnd.oci.empty.v1+json for cosign v3's bundles), the
// ?artifactType= filter is applied (with the OCI-Filters-Applied header)
// and entries come sorted by digest. A manifest PUT with a subject answers
// with the OCI-Subject header. Everything else is go-containerregistry's.
func NewRegistry(opts RegistryOptions) http.Handler {
	inner := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(!opts.NoReferrers),
	)
	h := &registryHandler{inner: inner, referrers: !opts.NoReferrers}
	if opts.Log == nil {
		return h
	}
	logger := log.New(opts.Log, "", log.LstdFlags|log.Lmicroseconds)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		logger.Printf("%s %s %d %dB %v", r.Method, r.URL, rec.status, rec.bytes, time.Since(start).Round(time.Microsecond))
	})
}

type registryHandler struct {
	inner     http.Handler
	referrers bool
}

func (h *registryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	repo, kind, target, ok := splitV2Path(r.URL.Path)
	switch {
	case ok && kind == "referrers" && !h.referrers:
		writeRegError(w, http.StatusNotFound, "NAME_UNKNOWN", "this registry has no referrers API")
	case ok && kind == "referrers" && r.Method == http.MethodGet:
		h.serveReferrers(w, r, repo, target)
	case ok && kind == "manifests" && r.Method == http.MethodPut && h.referrers:
		h.putManifest(w, r)
	default:
		h.inner.ServeHTTP(w, r)
	}
}

// splitV2Path splits /v2/<repo>/<kind>/<target>.
func splitV2Path(p string) (repo, kind, target string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", "", false
	}
	elems := strings.Split(rest, "/")
	if len(elems) < 3 {
		return "", "", "", false
	}
	n := len(elems)
	return strings.Join(elems[:n-2], "/"), elems[n-2], elems[n-1], true
}

// putManifest stores the manifest and adds OCI-Subject when it has a
// subject.
func (h *registryHandler) putManifest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeRegError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var m struct {
		Subject *v1.Descriptor `json:"subject"`
	}
	if json.Unmarshal(body, &m) == nil && m.Subject != nil {
		w.Header().Set("OCI-Subject", m.Subject.Digest.String())
	}
	h.inner.ServeHTTP(w, r)
}

// serveReferrers lists the referrers from the inner registry, fixes each
// entry's artifactType from its manifest, filters and sorts.
func (h *registryHandler) serveReferrers(w http.ResponseWriter, r *http.Request, repo, target string) {
	rec := h.get(r, r.URL.Path)
	if rec.Code != http.StatusOK {
		copyResponse(w, rec)
		return
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(rec.Body.Bytes(), &index); err != nil {
		writeRegError(w, http.StatusInternalServerError, "UNKNOWN", fmt.Sprintf("referrers of %s: %v", target, err))
		return
	}
	filter := r.URL.Query().Get("artifactType")
	kept := index.Manifests[:0]
	for _, desc := range index.Manifests {
		if at, ok := h.artifactType(r, repo, desc.Digest.String()); ok {
			desc.ArtifactType = at
		}
		if filter == "" || desc.ArtifactType == filter {
			kept = append(kept, desc)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Digest.String() < kept[j].Digest.String() })
	index.Manifests = kept
	body, err := json.Marshal(index)
	if err != nil {
		writeRegError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.Header().Set("Content-Type", string(types.OCIImageIndex))
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// artifactType is a manifest's artifactType, else its config media type.
func (h *registryHandler) artifactType(r *http.Request, repo, digest string) (string, bool) {
	rec := h.get(r, "/v2/"+repo+"/manifests/"+digest)
	if rec.Code != http.StatusOK {
		return "", false
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &m) != nil {
		return "", false
	}
	if m.ArtifactType != "" {
		return m.ArtifactType, true
	}
	return m.Config.MediaType, m.Config.MediaType != ""
}

// get runs a GET of path on the inner registry.
func (h *registryHandler) get(r *http.Request, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	rec := httptest.NewRecorder()
	h.inner.ServeHTTP(rec, req)
	return rec
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

// writeRegError writes a distribution-spec error body.
func writeRegError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// statusWriter records a response's status and size for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}
