package signtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key algorithms NewKey makes.
const (
	ECDSAP256 = "ecdsa-p256" // cosign generate-key-pair's default
	ECDSAP384 = "ecdsa-p384"
	Ed25519   = "ed25519"
	RSA2048   = "rsa-2048"
)

// Algorithms lists every algorithm NewKey accepts, for table tests.
var Algorithms = []string{ECDSAP256, ECDSAP384, Ed25519, RSA2048}

// Key is a signing key made in the test, like the pair
// `cosign generate-key-pair` writes.
//
// Classic signatures (SignClassic) hash with SHA-256 whatever the key, as
// cosign v2 does (verify with signature.LoadVerifier(pub, crypto.SHA256));
// bundles (SignBundle) use the key's default Sigstore algorithm: ECDSA P-256
// SHA-256, P-384 SHA-384, RSA PKCS#1 v1.5 SHA-256, Ed25519 pure (verify with
// signature.LoadDefaultVerifier(pub)). Ed25519 is pure in both.
type Key struct {
	// Name is the algorithm NewKey was given (ECDSAP256, …).
	Name string
	// Signer is the private key: *ecdsa.PrivateKey, ed25519.PrivateKey or
	// *rsa.PrivateKey.
	Signer crypto.Signer
	// PublicPEM is the public key as cosign.pub holds it: a PEM "PUBLIC KEY"
	// block of its PKIX (SubjectPublicKeyInfo) DER.
	PublicPEM []byte
}

// NewKey makes a key of the algorithm alg (one of Algorithms).
func NewKey(alg string) (*Key, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECDSAP384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RSA2048:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("new key: unknown algorithm %q (want one of %v)", alg, Algorithms)
	}
	if err != nil {
		return nil, fmt.Errorf("new key %s: %w", alg, err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("new key %s: public key PEM: %w", alg, err)
	}
	return &Key{Name: alg, Signer: priv, PublicPEM: pemBytes}, nil
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.Signer.Public() }

// WritePublic writes PublicPEM to path (mode 0644), as cosign.pub.
func (k *Key) WritePublic(path string) error {
	if err := os.WriteFile(path, k.PublicPEM, 0o644); err != nil {
		return fmt.Errorf("write public key %s: %w", k.Name, err)
	}
	return nil
}

// Hint is the key's hint in a bundle's verification material: standard
// base64 of the SHA-256 of its PKIX DER (what sigstore-go's keypairs use).
// A verifier's trusted key lookup receives it.
func (k *Key) Hint() (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return "", fmt.Errorf("key %s: %w", k.Name, err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// classicSigner is the signer cosign v2 loads for a key file:
// signature.LoadSignerVerifier(key, crypto.SHA256).
func (k *Key) classicSigner() (signature.Signer, error) {
	s, err := signature.LoadSigner(k.Signer, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key %s: load signer: %w", k.Name, err)
	}
	return s, nil
}

// keypair makes k a sigstore-go sign.Keypair with the key's default
// algorithm.
func (k *Key) keypair() (sign.Keypair, error) {
	details, err := signature.GetDefaultAlgorithmDetails(k.Public())
	if err != nil {
		return nil, fmt.Errorf("key %s: algorithm: %w", k.Name, err)
	}
	s, err := signature.LoadSignerFromAlgorithmDetails(k.Signer, details)
	if err != nil {
		return nil, fmt.Errorf("key %s: load signer: %w", k.Name, err)
	}
	hint, err := k.Hint()
	if err != nil {
		return nil, err
	}
	return &keypair{key: k, signer: s, details: details, hint: hint}, nil
}

// keypair is a sign.Keypair over a Key, with the signing done by a sigstore
// signature.Signer.
type keypair struct {
	key     *Key
	signer  signature.Signer
	details signature.AlgorithmDetails
	hint    string
}

var _ sign.Keypair = (*keypair)(nil)

func (p *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return p.details.GetProtoHashType()
}

func (p *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return p.details.GetSignatureAlgorithm()
}

func (p *keypair) GetHint() []byte { return []byte(p.hint) }

func (p *keypair) GetKeyAlgorithm() string {
	switch p.details.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (p *keypair) GetPublicKey() crypto.PublicKey { return p.key.Public() }

func (p *keypair) GetPublicKeyPem() (string, error) { return string(p.key.PublicPEM), nil }

// SignData signs data and returns the signature and the digest that was
// signed (data itself for pure Ed25519), as sign.Keypair requires.
func (p *keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	sig, err := p.signer.SignMessage(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: sign: %w", p.key.Name, err)
	}
	digest := data
	if h := p.details.GetHashType(); h != crypto.Hash(0) {
		hasher := h.New()
		hasher.Write(data)
		digest = hasher.Sum(nil)
	}
	return sig, digest, nil
}
