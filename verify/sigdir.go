package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/opencontainers/go-digest"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The local signature directory of air-gapped nodes.

// readSignatureDir reads the local signatures of d: <dir>/sha256-<hex>/
// with *.sigstore.json or *.bundle.json bundles and NAME.sig (base64, as
// cosign --output-signature writes it) with NAME.payload.
func readSignatureDir(dir string, d digest.Digest) ([]candidate, error) {
	if dir == "" {
		return nil, nil
	}
	sub := filepath.Join(dir, tagFor(d))
	entries, err := os.ReadDir(sub)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature directory: %v", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []candidate
	for _, n := range names {
		file := filepath.Join(sub, n)
		switch {
		case strings.HasSuffix(n, ".sigstore.json") || strings.HasSuffix(n, ".bundle.json"):
			data, err := readSmall(file)
			if err != nil {
				return out, err
			}
			out = append(out, candidate{kind: kindBundle, where: "file " + file, bundle: data})
		case strings.HasSuffix(n, ".sig"):
			raw, err := readSmall(file)
			if err != nil {
				return out, err
			}
			payload, err := readSmall(strings.TrimSuffix(file, ".sig") + ".payload")
			if err != nil {
				return out, fmt.Errorf("signature %s has no payload: %v", file, err)
			}
			sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw)))
			if err != nil {
				sig = raw
			}
			out = append(out, candidate{kind: kindClassic, where: "file " + file, payload: payload, sig: sig})
		}
	}
	return out, nil
}

func readSmall(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBlob(func() (io.ReadCloser, error) { return f, nil })
}
