package verify

// Registry credentials: the policy's authFile, a docker config.json (or
// podman's auth.json, the same format), read with docker's own loader so
// that "auths", "credsStore" and "credHelpers" mean what they mean to
// docker: a credential helper (docker-credential-<name> on $PATH) is run
// when a registry's credentials are asked for. This is what
// go-containerregistry's authn.DefaultKeychain does, for a file the policy
// names instead of $DOCKER_CONFIG.

import (
	"fmt"
	"os"
	"sync"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

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

// configKeychain is a docker config file's credentials.
type configKeychain struct {
	// mu: a credential helper may be asked by concurrent look-ups.
	mu sync.Mutex
	cf *configfile.ConfigFile
}

// loadAuthFile reads a docker config.json with docker's loader (which
// also decodes "auth" into username and password).
func loadAuthFile(file string) (*configKeychain, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a docker config.json: %v", file, err)
	}
	cf.Filename = file
	return &configKeychain{cf: cf}, nil
}

// Resolve looks the target up as go-containerregistry's default keychain
// does: by the full resource, then by its registry, with Docker Hub under
// docker's historical key https://index.docker.io/v1/.
func (k *configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry || key == "docker.io" || key == "registry-1.docker.io" {
			key = authn.DefaultAuthKey
		}
		cfg, err := k.cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s from %s: %w", key, k.cf.Filename, err)
		}
		if cfg.Username == "" && cfg.Password == "" && cfg.Auth == "" && cfg.IdentityToken == "" && cfg.RegistryToken == "" {
			continue
		}
		return authn.FromConfig(authn.AuthConfig{
			Username:      cfg.Username,
			Password:      cfg.Password,
			Auth:          cfg.Auth,
			IdentityToken: cfg.IdentityToken,
			RegistryToken: cfg.RegistryToken,
		}), nil
	}
	return authn.Anonymous, nil
}
