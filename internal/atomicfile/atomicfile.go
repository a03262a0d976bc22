// Package atomicfile replaces a file so that readers see the old content or
// the new, never a truncated file: a temporary file in the same directory,
// synced, then renamed over the target. (No os.Create of the target: runc's
// CVE-2024-45310 is the reminder.)
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces file with data, with permissions perm.
func Write(file string, data []byte, perm os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
