package verify

import (
	"encoding/json"
	"fmt"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"os"
	"strings"
)

// Registry credentials.

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
