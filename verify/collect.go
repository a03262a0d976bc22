package verify

import (
	"context"
	"errors"
	"fmt"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"strings"
)

// Collecting the candidate signatures of a digest from every place
// they may be.

// Bounds on what a registry may make the verifier read.
const (
	maxSignatures = 32
	// maxCandidates bounds the candidates of a digest from all sources.
	maxCandidates = 3 * maxSignatures
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
	// kindDSSE is a cosign v2 attestation: a DSSE envelope.
	kindDSSE = "dsse"
)

// candidate is one signature found for a digest.
type candidate struct {
	kind  string
	where string
	// classic: the simple signing payload and its signature; for a
	// keyless one, the certificate, chain, Rekor bundle and timestamp
	// annotations.
	payload, sig                        []byte
	cert, chain, rekorBundle, timestamp []byte
	// bundle: the bundle JSON.
	bundle []byte
	// dsse: the envelope JSON.
	envelope []byte
}

// collect finds the signatures for digest d of the image (and, with att,
// its cosign v2 attestations): those of the local signature directory
// (read by the caller), then each registry host of the image's registry
// (mirrors first) until one has any. err is set when a host could not be
// asked; it is reported only if no signature is accepted.
func (v *Verifier) collect(ctx context.Context, named reference.Named, d digest.Digest, att bool, local []candidate, localErr error) ([]candidate, error) {
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
		found, err := v.reg.fromHost(ctx, h, domain, path, d, att)
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
	if len(out) > maxCandidates {
		out = out[:maxCandidates]
	}
	if len(errs) > 0 {
		return out, errors.New(strings.Join(errs, "; "))
	}
	if len(out) == 0 {
		tags := tagFor(d) + ".sig"
		if att {
			tags += " and " + tagFor(d) + ".att"
		}
		return nil, fmt.Errorf("looked for tag %s and %s referrers in %s", tags, BundleMediaType, strings.Join(looked, ", "))
	}
	return out, nil
}
