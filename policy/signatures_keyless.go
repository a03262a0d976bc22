package policy

// Keyless signatures: a sigstoreSigned (or sigstoreAttested) requirement
// with fulcio instead of keys trusts signatures made with a short-lived
// certificate that the Fulcio CA issued to an OIDC identity (an email, or a
// CI workflow's URI) and that the Rekor transparency log recorded, as
// containers/image defines it (fulcio: caPath/caData, oidcIssuer,
// subjectEmail; rekorPublicKeyPath/Data), or with a Sigstore trusted root
// file. Everything is read when the policy is loaded and checked offline by
// the verifier (certificate chain, a Rekor entry or a signed timestamp at
// signing time, identity); this package checks only the structure (it
// stays free of crypto/x509).

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
)

// Fulcio is a keyless requirement's certificate authority and identity.
type Fulcio struct {
	// CAPath or CAData (PEM) are the Fulcio CA's certificates: its root
	// and intermediates. Or give the requirement's trustedRootPath.
	CAPath string `yaml:"caPath,omitempty" json:"caPath,omitempty"`
	CAData string `yaml:"caData,omitempty" json:"caData,omitempty"`
	// OIDCIssuer is the issuer the certificate must name (e.g.
	// https://token.actions.githubusercontent.com).
	OIDCIssuer string `yaml:"oidcIssuer" json:"oidcIssuer"`
	// SubjectEmail is the email the certificate must be issued to.
	SubjectEmail string `yaml:"subjectEmail,omitempty" json:"subjectEmail,omitempty"`
	// Subject is any other subject (URI) the certificate must be issued to,
	// e.g. https://github.com/org/app/.github/workflows/build.yml@refs/heads/main
	// (hardened's extension; give subjectEmail or subject).
	Subject string `yaml:"subject,omitempty" json:"subject,omitempty"`
}

// Keyless is the loaded trust material of a keyless requirement.
type Keyless struct {
	// CAPEM are the Fulcio CA's certificates (PEM), when given so.
	CAPEM []byte
	// RekorKeys are the Rekor logs' public keys.
	RekorKeys []PublicKey
	// TrustedRoot is a Sigstore trusted root (JSON), when given.
	TrustedRoot []byte
	// Source says where the material came from, for messages.
	Source string
	// Issuer and Subject are the identity required.
	Issuer, Subject string
}

// Identity is the identity required, for messages: "subject from issuer".
func (k *Keyless) Identity() string { return k.Subject + " (" + k.Issuer + ")" }

// hasRekorKeys reports whether the requirement names Rekor keys.
func (r *Requirement) hasRekorKeys() bool {
	return r.RekorPublicKeyPath != "" || len(r.RekorPublicKeyPaths) > 0 || r.RekorPublicKeyData != "" || len(r.RekorPublicKeyDatas) > 0
}

// loadKeyless validates a requirement's fulcio, Rekor keys and trusted
// root, and reads them.
func (r *Requirement) loadKeyless(base string, readFile func(string) ([]byte, error), h interface{ Write([]byte) (int, error) }, bad func(string, ...any)) {
	r.Keyless = nil
	f := r.Fulcio
	if f == nil {
		if r.hasRekorKeys() || r.TrustedRootPath != "" {
			bad(": rekorPublicKey* and trustedRootPath belong to keyless requirements (with fulcio)")
		}
		return
	}
	if r.hasKeys() {
		bad(": give either keys (keyPath, ...) or fulcio, not both")
		return
	}
	k := &Keyless{Issuer: f.OIDCIssuer}
	switch {
	case f.OIDCIssuer == "":
		bad(".fulcio.oidcIssuer: missing (e.g. https://token.actions.githubusercontent.com)")
	case !strings.Contains(f.OIDCIssuer, "://"):
		bad(".fulcio.oidcIssuer: %q is not a URL", f.OIDCIssuer)
	}
	switch {
	case f.SubjectEmail != "" && f.Subject != "":
		bad(".fulcio: give subjectEmail or subject, not both")
	case f.SubjectEmail != "":
		k.Subject = f.SubjectEmail
	case f.Subject != "":
		k.Subject = f.Subject
	default:
		bad(".fulcio: subjectEmail or subject missing: a keyless signature is trusted for one identity only")
	}
	file := func(p string) string {
		if base != "" && !filepath.IsAbs(p) {
			return filepath.Join(base, p)
		}
		return p
	}
	if r.TrustedRootPath != "" {
		if f.CAPath != "" || f.CAData != "" || r.hasRekorKeys() {
			bad(": give trustedRootPath, or fulcio.caPath/caData with rekorPublicKey*, not both")
		}
		data, err := readFile(file(r.TrustedRootPath))
		if err != nil {
			bad(".trustedRootPath: %v", err)
		} else if err := checkTrustedRoot(data); err != nil {
			bad(".trustedRootPath %s: %v", file(r.TrustedRootPath), err)
		} else {
			h.Write(data)
			k.TrustedRoot, k.Source = data, "trustedRootPath "+file(r.TrustedRootPath)
		}
		r.Keyless = k
		return
	}
	switch {
	case f.CAPath != "" && f.CAData != "":
		bad(".fulcio: give caPath or caData, not both")
	case f.CAPath != "":
		data, err := readFile(file(f.CAPath))
		if err != nil {
			bad(".fulcio.caPath: %v", err)
			break
		}
		k.CAPEM, k.Source = data, "fulcio.caPath "+file(f.CAPath)
	case f.CAData != "":
		k.CAPEM, k.Source = []byte(f.CAData), "fulcio.caData"
	default:
		bad(".fulcio: caPath or caData missing (the Fulcio CA's certificates), or give trustedRootPath")
	}
	if k.CAPEM != nil {
		if err := checkCertificates(k.CAPEM); err != nil {
			bad(".fulcio CA: %v", err)
		}
		h.Write(k.CAPEM)
	}
	paths := append([]string{}, r.RekorPublicKeyPaths...)
	if r.RekorPublicKeyPath != "" {
		paths = append([]string{r.RekorPublicKeyPath}, paths...)
	}
	for _, p := range paths {
		data, err := readFile(file(p))
		if err != nil {
			bad(".rekorPublicKeyPath: %v", err)
			continue
		}
		alg, err := CheckPublicKey(data)
		if err != nil {
			bad(".rekorPublicKeyPath %s: %v", file(p), err)
			continue
		}
		h.Write(data)
		k.RekorKeys = append(k.RekorKeys, PublicKey{Source: "rekorPublicKeyPath " + file(p), Algorithm: alg, PEM: data})
	}
	datas := append([]string{}, r.RekorPublicKeyDatas...)
	if r.RekorPublicKeyData != "" {
		datas = append([]string{r.RekorPublicKeyData}, datas...)
	}
	for i, d := range datas {
		alg, err := CheckPublicKey([]byte(d))
		if err != nil {
			bad(".rekorPublicKeyData[%d]: %v", i, err)
			continue
		}
		h.Write([]byte(d))
		k.RekorKeys = append(k.RekorKeys, PublicKey{Source: fmt.Sprintf("rekorPublicKeyData[%d]", i), Algorithm: alg, PEM: []byte(d)})
	}
	if len(paths)+len(datas) == 0 {
		bad(": fulcio needs rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData or rekorPublicKeyDatas (the Rekor log's key), or a trustedRootPath")
	}
	r.Keyless = k
}

// checkCertificates checks that data is one or more PEM certificates.
func checkCertificates(data []byte) error {
	n := 0
	for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return fmt.Errorf("not PEM certificates after %d certificate(s)", n)
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q is not a CERTIFICATE", b.Type)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no certificate")
	}
	return nil
}

// checkTrustedRoot checks the shape of a Sigstore trusted root.
func checkTrustedRoot(data []byte) error {
	var tr struct {
		MediaType              string            `json:"mediaType"`
		CertificateAuthorities []json.RawMessage `json:"certificateAuthorities"`
		Tlogs                  []json.RawMessage `json:"tlogs"`
		TimestampAuthorities   []json.RawMessage `json:"timestampAuthorities"`
	}
	if err := json.Unmarshal(data, &tr); err != nil {
		return fmt.Errorf("not a Sigstore trusted root: %v", err)
	}
	if !strings.HasPrefix(tr.MediaType, "application/vnd.dev.sigstore.trustedroot") {
		return fmt.Errorf("mediaType %q is not a Sigstore trusted root's", tr.MediaType)
	}
	if len(tr.CertificateAuthorities) == 0 {
		return fmt.Errorf("it lists no certificate authority (Fulcio)")
	}
	if len(tr.Tlogs) == 0 && len(tr.TimestampAuthorities) == 0 {
		return fmt.Errorf("it lists no transparency log and no timestamp authority: nothing would say when a certificate was used")
	}
	return nil
}
