package signtest

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/proto"
)

// Layer annotations of a cosign v2 keyless signature.
const (
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	ChainAnnotation       = "dev.sigstore.cosign/chain"
	RekorBundleAnnotation = "dev.sigstore.cosign/bundle"
)

// Keyless is a Sigstore deployment for keyless signing in tests:
// sigstore-go's virtual Sigstore (a Fulcio CA with an intermediate, a Rekor
// log, a timestamp authority and a CT log, all in memory). It issues
// certificates to email identities with an OIDC issuer, as Fulcio does.
type Keyless struct {
	vs *ca.VirtualSigstore
}

// NewKeyless makes a new deployment.
func NewKeyless() (*Keyless, error) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		return nil, fmt.Errorf("virtual sigstore: %w", err)
	}
	return &Keyless{vs: vs}, nil
}

// TrustedRootJSON is the deployment's trusted_root.json.
func (k *Keyless) TrustedRootJSON() ([]byte, error) {
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, k.vs.FulcioCertificateAuthorities(), rawLogIDs(k.vs.CTLogs()), k.vs.TimestampingAuthorities(), rawLogIDs(k.vs.RekorLogs()))
	if err != nil {
		return nil, err
	}
	return tr.MarshalJSON()
}

// rawLogIDs gives the virtual Sigstore's logs their ids as bytes (it keeps
// the hex text, which serves as trusted material in memory but not once
// written as a trusted_root.json: the file holds the raw key id).
func rawLogIDs(logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
	out := map[string]*root.TransparencyLog{}
	for id, l := range logs {
		cp := *l
		if raw, err := hex.DecodeString(string(l.ID)); err == nil {
			cp.ID = raw
		}
		out[id] = &cp
	}
	return out
}

// CAPEM is the Fulcio CA's certificates (intermediate, then root), as
// containers/image's fulcio.caPath holds them.
func (k *Keyless) CAPEM() ([]byte, error) {
	fca, ok := k.vs.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
	if !ok {
		return nil, errors.New("the virtual Fulcio is not a FulcioCertificateAuthority")
	}
	var out []byte
	for _, c := range append(append([]*x509.Certificate{}, fca.Intermediates...), fca.Root) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, nil
}

// RekorPublicKeyPEM is the Rekor log's public key, as rekorPublicKeyPath
// holds it.
func (k *Keyless) RekorPublicKeyPEM() ([]byte, error) {
	for _, l := range k.vs.RekorLogs() {
		return cryptoutils.MarshalPublicKeyToPEM(l.PublicKey)
	}
	return nil, errors.New("no Rekor log")
}

// chainPEM is the intermediate and root, as cosign's chain annotation.
func (k *Keyless) chainPEM() ([]byte, error) { return k.CAPEM() }

// BundleJSON is the Sigstore bundle (v0.3) cosign v3 makes when it signs
// statement keylessly (`cosign sign` / `cosign attest` with an OIDC
// identity): a DSSE envelope signed with a key certified to identity
// (an email) by issuer, its Rekor entry (dsse) with an inclusion proof,
// and an RFC 3161 timestamp.
func (k *Keyless) BundleJSON(statement []byte, identity, issuer string) ([]byte, error) {
	e, err := k.vs.AttestAtTime(identity, issuer, statement, time.Now().Add(5*time.Minute), true)
	if err != nil {
		return nil, fmt.Errorf("keyless bundle: %w", err)
	}
	vc, err := e.VerificationContent()
	if err != nil {
		return nil, err
	}
	sc, err := e.SignatureContent()
	if err != nil {
		return nil, err
	}
	env := sc.EnvelopeContent().RawEnvelope()
	var sigs []*protodsse.Signature
	for _, s := range env.Signatures {
		raw, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, &protodsse.Signature{Sig: raw, Keyid: s.KeyID})
	}
	payload, err := env.DecodeB64Payload()
	if err != nil {
		return nil, err
	}
	tles, _ := e.TlogEntries()
	var tlog []*protorekor.TransparencyLogEntry
	for _, t := range tles {
		tle, err := k.completeEntry(t)
		if err != nil {
			return nil, err
		}
		tlog = append(tlog, tle)
	}
	tss, _ := e.Timestamps()
	var rfc []*protocommon.RFC3161SignedTimestamp
	for _, ts := range tss {
		rfc = append(rfc, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries:               tlog,
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: rfc},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType, Signatures: sigs}},
	}
	return (&bundle.Bundle{Bundle: pb}).MarshalJSON()
}

// SignBundle signs subject keylessly as cosign v3 does and pushes the
// bundle as a referrer (PushBundle).
func (k *Keyless) SignBundle(ctx context.Context, repo name.Repository, subject v1.Descriptor, identity, issuer string, opts ...remote.Option) error {
	st, err := Statement(subject.Digest, "")
	if err != nil {
		return err
	}
	b, err := k.BundleJSON(st, identity, issuer)
	if err != nil {
		return err
	}
	_, err = PushBundle(ctx, repo, subject, b, SignPredicateType, opts...)
	return err
}

// completeEntry is the Rekor entry as a bundle carries it: the virtual
// Sigstore's entry with its kind and version, and its signed entry
// timestamp (the Rekor key's signature over the entry, as Rekor returns it).
func (k *Keyless) completeEntry(e *tlog.Entry) (*protorekor.TransparencyLogEntry, error) {
	tle := proto.Clone(e.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	var kind struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(tle.GetCanonicalizedBody(), &kind); err != nil {
		return nil, fmt.Errorf("rekor entry: %w", err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion}
	set, err := k.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
		IntegratedTime: tle.GetIntegratedTime(),
		LogIndex:       tle.GetLogIndex(),
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
	})
	if err != nil {
		return nil, fmt.Errorf("rekor entry: %w", err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle, nil
}

// rekorBundle is cosign v2's dev.sigstore.cosign/bundle annotation.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// SignClassic signs d keylessly as cosign v2 does (`cosign sign` with an
// OIDC identity): the Payload signed with a key certified to identity by
// issuer, appended to the sha256-<hex>.sig image as a layer whose
// annotations carry the signature, the certificate, the chain and the
// Rekor bundle (the hashedrekord entry's signed entry timestamp).
func (k *Keyless) SignClassic(ctx context.Context, repo name.Repository, d v1.Hash, dockerReference, identity, issuer string, opts ...remote.Option) error {
	p, err := Payload(dockerReference, d)
	if err != nil {
		return err
	}
	e, err := k.vs.Sign(identity, issuer, p)
	if err != nil {
		return fmt.Errorf("keyless sign: %w", err)
	}
	vc, _ := e.VerificationContent()
	sc, _ := e.SignatureContent()
	sig := sc.MessageSignatureContent().Signature()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.Certificate().Raw})
	chain, err := k.chainPEM()
	if err != nil {
		return err
	}
	tles, _ := e.TlogEntries()
	if len(tles) == 0 {
		return errors.New("keyless sign: no Rekor entry")
	}
	tle, err := k.completeEntry(tles[0])
	if err != nil {
		return err
	}
	var rb rekorBundle
	rb.SignedEntryTimestamp = tle.GetInclusionPromise().GetSignedEntryTimestamp()
	rb.Payload.Body = base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody())
	rb.Payload.IntegratedTime = tle.GetIntegratedTime()
	rb.Payload.LogIndex = tle.GetLogIndex()
	rb.Payload.LogID = hex.EncodeToString(tle.GetLogId().GetKeyId())
	rbJSON, err := json.Marshal(rb)
	if err != nil {
		return err
	}
	tag := SignatureTag(repo, d)
	opts = append(opts, remote.WithContext(ctx))
	base, err := signatureImage(tag, opts)
	if err != nil {
		return err
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: static.NewLayer(p, SimpleSigningMediaType),
		Annotations: map[string]string{
			SignatureAnnotation:   base64.StdEncoding.EncodeToString(sig),
			CertificateAnnotation: string(certPEM),
			ChainAnnotation:       string(chain),
			RekorBundleAnnotation: string(rbJSON),
		},
	})
	if err != nil {
		return err
	}
	return remote.Write(tag, img, opts...)
}
