package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// containers/image's policy.json, read as a signatures section.

// policyJSON is containers/image's policy.json.
type policyJSON struct {
	Default    []json.RawMessage                       `json:"default"`
	Transports map[string]map[string][]json.RawMessage `json:"transports"`
}

// requirementJSON is a requirement as policy.json spells it: keyData and
// keyDatas are base64 of the PEM.
type requirementJSON struct {
	Type           string          `json:"type"`
	KeyType        string          `json:"keyType,omitempty"`
	KeyPath        string          `json:"keyPath,omitempty"`
	KeyPaths       []string        `json:"keyPaths,omitempty"`
	KeyData        []byte          `json:"keyData,omitempty"`
	KeyDatas       [][]byte        `json:"keyDatas,omitempty"`
	SignedIdentity *SignedIdentity `json:"signedIdentity,omitempty"`
	// Keyless: fulcio's caData and the rekorPublicKeyData(s) are base64.
	Fulcio              *fulcioJSON `json:"fulcio,omitempty"`
	RekorPublicKeyPath  string      `json:"rekorPublicKeyPath,omitempty"`
	RekorPublicKeyPaths []string    `json:"rekorPublicKeyPaths,omitempty"`
	RekorPublicKeyData  []byte      `json:"rekorPublicKeyData,omitempty"`
	RekorPublicKeyDatas [][]byte    `json:"rekorPublicKeyDatas,omitempty"`
}

// fulcioJSON is containers/image's fulcio object.
type fulcioJSON struct {
	CAPath       string `json:"caPath,omitempty"`
	CAData       []byte `json:"caData,omitempty"`
	OIDCIssuer   string `json:"oidcIssuer,omitempty"`
	SubjectEmail string `json:"subjectEmail,omitempty"`
}

// parsePolicyJSON reads a policy.json: its default and its "docker"
// transport scopes. Other transports (docker-daemon, atomic, ...) do not
// apply to images containerd pulls and are ignored. Requirement types or
// fields hardened cannot check (signedBy, pki,
// remapIdentity) are errors, never ignored.
func parsePolicyJSON(data []byte) ([]Requirement, map[string][]Requirement, error) {
	if err := strictJSONKeys(data); err != nil {
		return nil, nil, fmt.Errorf("not a policy.json: %v", err)
	}
	var pj policyJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pj); err != nil {
		return nil, nil, fmt.Errorf("not a policy.json: %v", err)
	}
	conv := func(field string, raws []json.RawMessage) ([]Requirement, error) {
		var out []Requirement
		for i, raw := range raws {
			var rj requirementJSON
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(&rj); err != nil {
				return nil, fmt.Errorf("%s[%d]: %v (supported: type, keyPath, keyPaths, keyData, keyDatas, fulcio, rekorPublicKeyPath(s), rekorPublicKeyData(s), signedIdentity)", field, i, cleanJSONError(err))
			}
			if rj.Type == SigstoreSigned {
				if rj.KeyType != "" {
					return nil, fmt.Errorf("%s[%d].keyType: not a field of sigstoreSigned", field, i)
				}
				n := 0
				for _, set := range []bool{rj.KeyPath != "", rj.KeyPaths != nil, rj.KeyData != nil, rj.KeyDatas != nil, rj.Fulcio != nil} {
					if set {
						n++
					}
				}
				if n > 1 {
					return nil, fmt.Errorf("%s[%d]: give exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio", field, i)
				}
				if rj.SignedIdentity == nil {
					// containers/image's default for sigstoreSigned.
					rj.SignedIdentity = &SignedIdentity{Type: MatchRepoDigestOrExact}
				}
			} else if rj.KeyType != "" && rj.KeyType != "GPGKeys" {
				return nil, fmt.Errorf("%s[%d].keyType: %q is not supported", field, i, rj.KeyType)
			}
			r := Requirement{Type: rj.Type, KeyPath: rj.KeyPath, KeyPaths: rj.KeyPaths, SignedIdentity: rj.SignedIdentity,
				RekorPublicKeyPath: rj.RekorPublicKeyPath, RekorPublicKeyPaths: rj.RekorPublicKeyPaths}
			if f := rj.Fulcio; f != nil {
				r.Fulcio = &Fulcio{CAPath: f.CAPath, CAData: string(f.CAData), OIDCIssuer: f.OIDCIssuer, SubjectEmail: f.SubjectEmail}
			}
			if rj.RekorPublicKeyData != nil {
				r.RekorPublicKeyData = string(rj.RekorPublicKeyData)
			}
			for _, k := range rj.RekorPublicKeyDatas {
				r.RekorPublicKeyDatas = append(r.RekorPublicKeyDatas, string(k))
			}
			if rj.KeyData != nil {
				r.KeyData = string(rj.KeyData)
			}
			for _, k := range rj.KeyDatas {
				r.KeyDatas = append(r.KeyDatas, string(k))
			}
			out = append(out, r)
		}
		return out, nil
	}
	def, err := conv("default", pj.Default)
	if err != nil {
		return nil, nil, err
	}
	if len(def) == 0 {
		return nil, nil, errors.New("default: must list at least one requirement")
	}
	scopes := map[string][]Requirement{}
	for scope, raws := range pj.Transports["docker"] {
		if scope == "" {
			continue // "" in a transport is that transport's default: use it as ours
		}
		reqs, err := conv(fmt.Sprintf("transports.docker[%q]", scope), raws)
		if err != nil {
			return nil, nil, err
		}
		scopes[scope] = reqs
	}
	if raws, ok := pj.Transports["docker"][""]; ok {
		reqs, err := conv(`transports.docker[""]`, raws)
		if err != nil {
			return nil, nil, err
		}
		def = reqs
	}
	return def, scopes, nil
}

// jsonFields are the keys a policy.json may have, spelled as
// containers/image spells them.
var jsonFields = map[string]string{}

func init() {
	for _, f := range []string{"default", "transports", "type", "keyType", "keyPath", "keyPaths", "keyData", "keyDatas",
		"signedIdentity", "dockerReference", "dockerRepository", "fulcio", "caPath", "caData", "oidcIssuer", "subjectEmail",
		"rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData", "rekorPublicKeyDatas"} {
		jsonFields[strings.ToLower(f)] = f
	}
}

// strictJSONKeys refuses what encoding/json would quietly accept and
// containers/image refuses: a key given twice in an object (json keeps the
// last) and a known key in another case ("Type": json matches it).
func strictJSONKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				low := strings.ToLower(k)
				if seen[low] {
					return fmt.Errorf("key %q given twice", k)
				}
				seen[low] = true
				if want, ok := jsonFields[low]; ok && want != k {
					return fmt.Errorf("key %q: write %q", k, want)
				}
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	return walk()
}

func cleanJSONError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}
