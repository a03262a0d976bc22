package policy

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Trusted public keys: what a cosign.pub may be.

// OIDs of the public key algorithms and curves cosign keys use.
var (
	oidECPublicKey  = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidRSA          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEd25519      = asn1.ObjectIdentifier{1, 3, 101, 112}
	namedCurvePoint = map[string]struct {
		name string
		size int // of the uncompressed point
	}{
		"1.2.840.10045.3.1.7": {"P-256", 65},
		"1.3.132.0.34":        {"P-384", 97},
		"1.3.132.0.35":        {"P-521", 133},
	}
)

// CheckPublicKey checks a PEM public key as cosign writes it (cosign.pub:
// a PKIX SubjectPublicKeyInfo) and says what it is: ECDSA P-256, P-384 or
// P-521, Ed25519, or RSA of at least 2048 bits. It checks the structure
// only, with encoding/asn1: this package stays free of crypto/x509 (which
// brings net and cgo); the verifier parses the key with crypto/x509.
func CheckPublicKey(data []byte) (string, error) {
	block, _ := pem.Decode(bytes.TrimSpace(data))
	if block == nil {
		return "", errors.New("not a PEM public key (want -----BEGIN PUBLIC KEY-----, as cosign.pub)")
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return "", errors.New("this is a private key: give the public key (cosign.pub)")
	}
	if block.Type != "PUBLIC KEY" {
		return "", fmt.Errorf("PEM block %q is not a PUBLIC KEY", block.Type)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(block.Bytes, &spki); err != nil || len(rest) > 0 {
		return "", errors.New("not a public key: malformed SubjectPublicKeyInfo")
	}
	key := spki.PublicKey.RightAlign()
	switch alg := spki.Algorithm.Algorithm; {
	case alg.Equal(oidECPublicKey):
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil {
			return "", errors.New("ECDSA key without a named curve")
		}
		c, ok := namedCurvePoint[curve.String()]
		if !ok {
			return "", fmt.Errorf("ECDSA curve %s is not supported (P-256, P-384, P-521)", curve)
		}
		if len(key) != c.size || key[0] != 4 {
			return "", fmt.Errorf("ECDSA %s key: malformed point", c.name)
		}
		return "ECDSA " + c.name, nil
	case alg.Equal(oidEd25519):
		if len(key) != 32 {
			return "", errors.New("Ed25519 key: not 32 bytes")
		}
		return "Ed25519", nil
	case alg.Equal(oidRSA):
		var pk struct {
			N *big.Int
			E int
		}
		if _, err := asn1.Unmarshal(key, &pk); err != nil || pk.N == nil {
			return "", errors.New("RSA key: malformed")
		}
		if pk.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits is too short (at least 2048)", pk.N.BitLen())
		}
		return fmt.Sprintf("RSA %d", pk.N.BitLen()), nil
	default:
		return "", fmt.Errorf("key algorithm %s is not supported (ECDSA, Ed25519, RSA)", alg)
	}
}
