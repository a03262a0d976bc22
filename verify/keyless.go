package verify

// Keyless signatures: the trust material of a requirement with fulcio (a
// Sigstore trusted root, or the Fulcio CA's certificates and the Rekor
// keys), and the check of a signature made with a Fulcio certificate,
// offline: the certificate chains to the CA, the signature was observed
// while the certificate was valid (a Rekor entry whose signed entry
// timestamp or inclusion proof the log's key verifies, or an RFC 3161
// timestamp), and the certificate names the identity and issuer required.
// sigstore-go does all of it; cosign v2's .sig layers are first turned into
// the bundle they amount to.

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/hardened-runtime/hardened/policy"
)

// Layer annotations of a cosign v2 keyless signature.
const (
	CertificateAnnotation = "dev.sigstore.cosign/certificate"
	ChainAnnotation       = "dev.sigstore.cosign/chain"
	RekorBundleAnnotation = "dev.sigstore.cosign/bundle"
	TimestampAnnotation   = "dev.sigstore.cosign/rfc3161timestamp"
)

// trustStore is what the policy trusts: keys by PEM, and keyless material.
type trustStore struct {
	keys    map[string]crypto.PublicKey
	keyless map[*policy.Keyless]*keylessTrust
}

// keylessTrust is the trust material of one keyless requirement.
type keylessTrust struct {
	material root.TrustedMaterial
	// tlog: Rekor logs are known, so a Rekor entry is required.
	tlog     bool
	identity sgverify.CertificateIdentity
	// who names the identity and the material, for verdicts.
	who string
}

func newKeylessTrust(k *policy.Keyless) (*keylessTrust, error) {
	kt := &keylessTrust{who: "keyless " + k.Identity() + " via " + k.Source}
	id, err := sgverify.NewShortCertificateIdentity(k.Issuer, "", k.Subject, "")
	if err != nil {
		return nil, fmt.Errorf("keyless identity: %w", err)
	}
	kt.identity = id
	if k.TrustedRoot != nil {
		tr, err := root.NewTrustedRootFromJSON(k.TrustedRoot)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Source, err)
		}
		kt.material, kt.tlog = tr, len(tr.RekorLogs()) > 0
		return kt, nil
	}
	var certs []*x509.Certificate
	for rest := bytes.TrimSpace(k.CAPEM); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.Source, err)
		}
		certs = append(certs, c)
	}
	ca := &root.FulcioCertificateAuthority{}
	for _, c := range certs {
		if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
			if ca.Root != nil {
				return nil, fmt.Errorf("%s: more than one root certificate", k.Source)
			}
			ca.Root = c
		} else {
			ca.Intermediates = append(ca.Intermediates, c)
		}
	}
	if ca.Root == nil {
		return nil, fmt.Errorf("%s: no self-signed root certificate", k.Source)
	}
	logs := map[string]*root.TransparencyLog{}
	for _, rk := range k.RekorKeys {
		pub, err := parseKey(rk.PEM)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rk.Source, err)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		id := sha256.Sum256(der)
		// The key is trusted for every entry (containers/image's
		// rekorPublicKey has no validity period; sigstore-go wants a start).
		logs[hex.EncodeToString(id[:])] = &root.TransparencyLog{BaseURL: rk.Source, ID: id[:], HashFunc: crypto.SHA256, PublicKey: pub, SignatureHashFunc: crypto.SHA256,
			ValidityPeriodStart: time.Unix(1, 0)}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{ca}, nil, nil, logs)
	if err != nil {
		return nil, err
	}
	kt.material, kt.tlog = tr, len(logs) > 0
	return kt, nil
}

// verify checks a signed entity made with a Fulcio certificate.
func (kt *keylessTrust) verify(e sgverify.SignedEntity, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	opts := []sgverify.VerifierOption{sgverify.WithObserverTimestamps(1)}
	if kt.tlog {
		opts = append(opts, sgverify.WithTransparencyLog(1))
	}
	sv, err := sgverify.NewVerifier(kt.material, opts...)
	if err != nil {
		return nil, err
	}
	return sv.Verify(e, sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(kt.identity)))
}

// keylessError makes sigstore-go's errors a short reason.
func keylessError(kt *keylessTrust, err error) error {
	msg := err.Error()
	switch {
	case bytesContains(msg, "no matching CertificateIdentity"), bytesContains(msg, "certificate identity"):
		return fmt.Errorf("certificate is not issued to %s: %v", kt.who, err)
	default:
		return fmt.Errorf("keyless signature not acceptable (%s): %v", kt.who, err)
	}
}

func bytesContains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }

// classicKeylessBundle is the Sigstore bundle (v0.1: a Rekor entry with
// its signed entry timestamp) a cosign v2 keyless signature layer amounts
// to: the certificate and chain of its annotations, the Rekor bundle, and
// the signature over the payload.
func classicKeylessBundle(c candidate) (*bundle.Bundle, error) {
	var chain []*protocommon.X509Certificate
	for _, data := range [][]byte{c.cert, c.chain} {
		for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				return nil, errors.New("certificate annotations are not PEM")
			}
			chain = append(chain, &protocommon.X509Certificate{RawBytes: b.Bytes})
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("no certificate (a signature by a key, not keyless)")
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{Certificates: chain}},
	}
	if c.rekorBundle != nil {
		var rb struct {
			SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
			Payload              struct {
				Body           string `json:"body"`
				IntegratedTime int64  `json:"integratedTime"`
				LogIndex       int64  `json:"logIndex"`
				LogID          string `json:"logID"`
			} `json:"Payload"`
		}
		if err := json.Unmarshal(c.rekorBundle, &rb); err != nil {
			return nil, fmt.Errorf("Rekor bundle annotation: %v", err)
		}
		body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
		if err != nil {
			return nil, fmt.Errorf("Rekor bundle body: %v", err)
		}
		var kind struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal(body, &kind); err != nil {
			return nil, fmt.Errorf("Rekor entry: %v", err)
		}
		logID, err := hex.DecodeString(rb.Payload.LogID)
		if err != nil {
			return nil, fmt.Errorf("Rekor log id: %v", err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{{
			LogIndex:          rb.Payload.LogIndex,
			LogId:             &protocommon.LogId{KeyId: logID},
			KindVersion:       &protorekor.KindVersion{Kind: kind.Kind, Version: kind.APIVersion},
			IntegratedTime:    rb.Payload.IntegratedTime,
			InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
			CanonicalizedBody: body,
		}}
	}
	if c.timestamp != nil {
		var ts struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal(c.timestamp, &ts); err == nil && len(ts.SignedRFC3161Timestamp) > 0 {
			vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}}}
		}
	}
	sum := sha256.Sum256(c.payload)
	pb := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle+json;version=0.1",
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     c.sig,
		}},
	}
	return bundle.NewBundle(pb)
}
