package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/pelletier/go-toml/v2"
	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/internal/atomicfile"
	"github.com/hardened-runtime/hardened/policy"
)

// Where the node-side pieces go, as the host sees them (--root prefixes
// them when hardenctl runs with the host mounted elsewhere, as in the
// installer DaemonSet).
const (
	defaultContainerdConfig = "/etc/containerd/config.toml"
	defaultConfDir          = "/etc/containerd/conf.d"
	defaultBinDir           = "/usr/local/bin"
	shimBinary              = "containerd-shim-hardened-v2"
	verifierBinary          = "hardened-verify"
	pullGateBinary          = "hardened-image-verifier"
	// defaultPullGateDir is containerd's default bin_dir of image
	// verifiers (plugin io.containerd.image-verifier.v1.bindir).
	defaultPullGateDir    = "/opt/containerd/image-verifier/bin"
	manifestPath          = "/etc/hardened/install.json"
	defaultRestartCommand = "systemctl restart containerd"
)

func installFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Value: "/", Usage: "the host's root directory (the installer DaemonSet mounts it at /host)"},
		&cli.StringFlag{Name: "containerd-config", Value: defaultContainerdConfig, Usage: "containerd's config file, as the host sees it"},
		&cli.StringFlag{Name: "conf-dir", Value: defaultConfDir, Usage: "the directory of containerd config drop-ins config.toml imports"},
		&cli.BoolFlag{Name: "dry-run", Usage: "print what would change; change nothing"},
		&cli.BoolFlag{Name: "restart", Usage: "restart containerd when its configuration changed (running containers keep running)"},
		&cli.StringFlag{Name: "restart-command", Value: defaultRestartCommand, Usage: "how to restart containerd (the DaemonSet runs it in the host's namespaces with nsenter)"},
		&cli.StringFlag{Name: "containerd", Value: "containerd", Usage: "the containerd binary that validates the resulting config (containerd config dump)"},
		&cli.BoolFlag{Name: "skip-validate", Usage: "do not validate the resulting config with containerd (no containerd on this machine)"},
		&cli.StringFlag{Name: "record", Value: manifestPath, Usage: "where install records what it did, for uninstall"},
		outputFlag,
	}
}

func installCommand() *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "install the hardened runtime on this node: shim binary, policy, containerd drop-in",
		Description: `Does the node-side steps of an install, for admins without Kubernetes (the
installer DaemonSet runs the same command):
  1. copies containerd-shim-hardened-v2 and its signature verifier
     hardened-verify (which the shim looks for next to itself) to --bin-dir;
  2. writes the node policy (--policy FILE, validated first) to --policy-path
     and, for the default path, ` + policy.MarkerPath + `: while it exists the
     shim refuses every container if the policy goes missing, rather than
     falling back to its built-in default;
  3. writes the containerd drop-in <conf-dir>/hardened.toml (runtime --runtime-name,
     runtime_type io.containerd.hardened.v2; ConfigPath = the policy unless it is
     at the shim's default path);
  4. makes config.toml import <conf-dir>/*.toml if it does not already (one line;
     config.toml is created if missing);
  5. validates the result with ` + "`containerd --config F config dump`" + ` and undoes
     everything if containerd rejects it;
  6. with --restart, restarts containerd if its configuration changed;
  7. with --pull-gate, copies hardened-image-verifier to containerd's image
     verifier directory (--pull-gate-dir, default ` + defaultPullGateDir + `,
     which containerd reads without configuration; another directory is
     set as bin_dir in the drop-in) as "hardened": pulls (CRI's included)
     of images the policy refuses then fail, and accepted verdicts are cached
     for the start. The gate reads /etc/hardened/policy.yaml or $HARDENED_POLICY.
It records what it did in ` + manifestPath + `, so that ` + "`hardenctl uninstall`" + ` puts
every file back byte for byte. Running it again changes nothing.

EXAMPLES:
   hardenctl install --dry-run
   hardenctl install --policy ./policy.yaml --restart
   hardenctl install --root /host --restart \
       --restart-command "nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd"`,
		Flags: append(installFlags(),
			&cli.StringFlag{Name: "shim", Usage: "the shim binary to install (default: " + shimBinary + " next to hardenctl)"},
			&cli.StringFlag{Name: "verifier", Usage: "the signature verifier binary to install (default: " + verifierBinary + " next to the shim)"},
			&cli.StringFlag{Name: "bin-dir", Value: defaultBinDir, Usage: "where the shim and the verifier go (on containerd's $PATH)"},
			&cli.StringFlag{Name: "policy", Usage: "a policy file to install (validated); without it an existing policy is kept and none is written"},
			&cli.StringFlag{Name: "policy-path", Value: policy.DefaultPath, Usage: "where the node policy lives, as the host sees it"},
			&cli.StringFlag{Name: "runtime-name", Value: "hardened", Usage: "the runtime's name in containerd (the RuntimeClass handler)"},
			&cli.BoolFlag{Name: "pull-gate", Usage: "also refuse images at pull, with containerd's image verifier plugin"},
			&cli.StringFlag{Name: "pull-gate-dir", Value: defaultPullGateDir, Usage: "containerd's image verifier bin_dir"},
			&cli.StringFlag{Name: "pull-gate-binary", Usage: "the pull gate binary to install (default: " + pullGateBinary + " next to the shim)"},
		),
		Before: checkOutput,
		Action: runInstall,
	}
}

func uninstallCommand() *cli.Command {
	return &cli.Command{
		Name:  "uninstall",
		Usage: "undo `hardenctl install`: every file it wrote removed or restored byte for byte",
		Description: `Reads ` + manifestPath + ` and undoes each step of the install: files it
created are removed, files it changed (config.toml) are restored from the copy it
kept. A file changed since the install is left alone and reported (exit 1),
unless --force. With --restart, containerd is restarted if its configuration
changed; running hardened containers keep running until they exit.

EXAMPLES:
   hardenctl uninstall --dry-run
   hardenctl uninstall --restart`,
		Flags: append(installFlags(),
			&cli.BoolFlag{Name: "force", Usage: "undo also files changed since the install"}),
		Before: checkOutput,
		Action: runUninstall,
	}
}

// step is one file the install touches.
type step struct {
	// Path is the file as the host sees it.
	Path string `json:"path"`
	// Action: created, updated, unchanged (install); removed, restored,
	// kept (uninstall).
	Action string `json:"action"`
	// Why says what the file is, or why it was kept.
	Why  string `json:"why,omitempty"`
	data []byte
	perm fs.FileMode
}

// installRecord is what install leaves in manifestPath.
type installRecord struct {
	Files []recordedFile `json:"files"`
}

type recordedFile struct {
	Path string `json:"path"`
	// SHA256 of what install wrote: uninstall touches only that.
	SHA256 string `json:"sha256"`
	// Backup holds the file as it was before install changed it; "" when
	// install created the file.
	Backup string `json:"backup,omitempty"`
	// Config marks containerd's configuration (a change needs a restart).
	Config bool `json:"config,omitempty"`
}

type installer struct {
	root                        string
	config, confDir, manifest   string // host paths
	dryRun, restart, skipValid  bool
	restartCommand, containerdB string
}

func newInstaller(c *cli.Context) installer {
	return installer{
		root: c.String("root"), config: c.String("containerd-config"), confDir: c.String("conf-dir"), manifest: c.String("record"),
		dryRun: c.Bool("dry-run"), restart: c.Bool("restart"), skipValid: c.Bool("skip-validate"),
		restartCommand: c.String("restart-command"), containerdB: c.String("containerd"),
	}
}

// at is a host path as this process reaches it.
func (in installer) at(hostPath string) string { return filepath.Join(in.root, hostPath) }

func runInstall(c *cli.Context) error {
	in := newInstaller(c)
	shimSrc := c.String("shim")
	if shimSrc == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		shimSrc = filepath.Join(filepath.Dir(self), shimBinary)
	}
	shim, err := os.ReadFile(shimSrc)
	if err != nil {
		return fmt.Errorf("read the shim binary (--shim): %w", err)
	}
	verifierSrc := c.String("verifier")
	if verifierSrc == "" {
		verifierSrc = filepath.Join(filepath.Dir(shimSrc), verifierBinary)
	}
	verifier, err := os.ReadFile(verifierSrc)
	if err != nil {
		return fmt.Errorf("read the signature verifier binary (--verifier): %w", err)
	}
	policyPath := c.String("policy-path")
	var steps []*step
	steps = append(steps, &step{Path: filepath.Join(c.String("bin-dir"), shimBinary), Why: "the shim", data: shim, perm: 0o755},
		&step{Path: filepath.Join(c.String("bin-dir"), verifierBinary), Why: "the shim's signature verifier", data: verifier, perm: 0o755})
	if f := c.String("policy"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read the policy (--policy): %w", err)
		}
		if _, err := policy.Parse(data); err != nil {
			return fmt.Errorf("policy %s is invalid, nothing installed: %w", f, err)
		}
		steps = append(steps, &step{Path: policyPath, Why: "the node policy", data: data, perm: 0o644})
		if policyPath == policy.DefaultPath {
			// While it exists, a missing policy refuses containers (the
			// shim's default path) instead of meaning the built-in default.
			steps = append(steps, &step{Path: policy.MarkerPath, Why: "marks the node as having a policy: the shim refuses containers while " + policy.DefaultPath + " is missing",
				data: []byte(policy.MarkerContent), perm: 0o644})
		}
	}
	dropIn := filepath.Join(in.confDir, "hardened.toml")
	dropInData := dropInConfig(c.String("runtime-name"), filepath.Join(c.String("bin-dir"), shimBinary), policyPath)
	if c.Bool("pull-gate") {
		src := c.String("pull-gate-binary")
		if src == "" {
			src = filepath.Join(filepath.Dir(shimSrc), pullGateBinary)
		}
		gate, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read the pull gate binary (--pull-gate-binary): %w", err)
		}
		if policyPath != policy.DefaultPath {
			return fmt.Errorf("--pull-gate: the gate reads %s (or $HARDENED_POLICY in containerd's environment), not --policy-path %s", policy.DefaultPath, policyPath)
		}
		dir := c.String("pull-gate-dir")
		steps = append(steps, &step{Path: filepath.Join(dir, "hardened"), Why: "the pull gate (containerd image verifier)", data: gate, perm: 0o755})
		if dir != defaultPullGateDir {
			dropInData = append(dropInData, fmt.Sprintf("\n[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = %s\n", strconv.Quote(dir))...)
		}
	}
	steps = append(steps, &step{Path: dropIn, Why: "containerd drop-in: runtime " + c.String("runtime-name"),
		data: dropInData, perm: 0o644})
	cfg, err := in.configWithImport(dropIn)
	if err != nil {
		return err
	}
	steps = append(steps, cfg)

	rec := in.readRecord()
	for _, s := range steps {
		s.Action = in.plan(s)
	}
	if in.dryRun {
		return report(c, steps, "dry run: nothing changed")
	}
	configChanged := false
	var done []*step
	undo := func() {
		for i := len(done) - 1; i >= 0; i-- {
			in.revert(done[i], rec)
		}
	}
	for _, s := range steps {
		if s.Action == "unchanged" {
			continue
		}
		if err := in.apply(s, &rec); err != nil {
			undo()
			return fmt.Errorf("install %s: %w (undone)", s.Path, err)
		}
		done = append(done, s)
		configChanged = configChanged || s.Path == dropIn || s.Path == in.config
	}
	if configChanged && !in.skipValid {
		if err := in.validate(); err != nil {
			undo()
			return fmt.Errorf("validate the resulting configuration: %w; nothing installed", err)
		}
	}
	if len(done) > 0 {
		if err := in.writeRecord(rec); err != nil {
			undo()
			return err
		}
	}
	msg := "nothing to change"
	if len(done) > 0 {
		msg = fmt.Sprintf("%d files changed; record in %s", len(done), in.manifest)
	}
	if configChanged && in.restart {
		if err := in.restartContainerd(); err != nil {
			return err
		}
		msg += "; containerd restarted"
	} else if configChanged {
		msg += "; restart containerd to load the runtime (running containers keep running)"
	}
	return report(c, steps, msg)
}

// dropInConfig is the containerd 2.x drop-in for the runtime. runtime_path
// names the installed shim, so the CRI plugin does not depend on
// containerd's $PATH (ctr and the Go client still look the shim up there).
//
// A policy at the shim's default path (policy.DefaultPath) gets no options
// table: with one, containerd's CRI plugin cannot start a Kubernetes
// hostUsers: false pod on a runtime that is not runc (it converts the
// handler's runtimeoptions.Options into runc's options type for such a
// pod and fails). A policy elsewhere needs ConfigPath, and the drop-in
// says what that costs.
func dropInConfig(name, shimPath, policyPath string) []byte {
	head := fmt.Sprintf(`# Written by hardenctl install; hardenctl uninstall removes it.
version = 3

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]s]
  runtime_type = "io.containerd.hardened.v2"
  runtime_path = %[2]s
`, name, strconv.Quote(shimPath))
	if policyPath == policy.DefaultPath {
		return []byte(head + `  # No options: the shim reads its policy at ` + policy.DefaultPath + `. (With an
  # options table, hostUsers: false pods cannot start: containerd's CRI plugin
  # converts a non-runc runtime's options into runc's type for them.)
`)
	}
	return []byte(head + fmt.Sprintf(`  # ConfigPath: the policy is not at the shim's default path. containerd's CRI
  # plugin then cannot start hostUsers: false pods on this runtime (it converts
  # the options into runc's type for them); keep the policy at `+policy.DefaultPath+`
  # to run them.
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.%[1]s.options]
    ConfigPath = %[2]s
`, name, strconv.Quote(policyPath)))
}

var importsLine = regexp.MustCompile(`(?m)^(\s*imports\s*=\s*\[)([^\]\n]*)(\]\s*(#.*)?)$`)
var versionLine = regexp.MustCompile(`(?m)^\s*version\s*=\s*\d+\s*(#.*)?\n`)

// configWithImport returns config.toml as it must be for containerd to
// read dropIn: unchanged if an import covers it already; else with one
// import added (to an imports line of its own, or a new one after
// version); or a new file.
func (in installer) configWithImport(dropIn string) (*step, error) {
	s := &step{Path: in.config, Why: "containerd's config: imports " + in.confDir + "/*.toml", perm: 0o644}
	want := filepath.Join(in.confDir, "*.toml")
	old, err := os.ReadFile(in.at(in.config))
	if errors.Is(err, fs.ErrNotExist) {
		s.data = []byte(fmt.Sprintf("# Written by hardenctl install.\nversion = 3\nimports = [%s]\n", strconv.Quote(want)))
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var parsed struct {
		Version int      `toml:"version"`
		Imports []string `toml:"imports"`
	}
	if err := toml.Unmarshal(old, &parsed); err != nil {
		return nil, fmt.Errorf("%s is not valid TOML, fix it first: %w", in.config, err)
	}
	if parsed.Version != 0 && parsed.Version < 2 {
		return nil, fmt.Errorf("%s has config version %d: containerd 2.x needs version 2 or 3", in.config, parsed.Version)
	}
	for _, imp := range parsed.Imports {
		p := filepath.Clean(imp)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(in.config), p)
		}
		if ok, _ := filepath.Match(p, dropIn); ok {
			s.data = old
			return s, nil
		}
	}
	entry := strconv.Quote(want)
	switch loc := importsLine.FindSubmatchIndex(old); {
	case loc != nil:
		items := strings.TrimSpace(string(old[loc[4]:loc[5]]))
		sep := ""
		if items != "" {
			sep = ", "
			if strings.HasSuffix(items, ",") {
				sep = " "
			}
		}
		s.data = append(append(append([]byte{}, old[:loc[4]]...), []byte(items+sep+entry)...), old[loc[5]:]...)
	case len(parsed.Imports) > 0:
		return nil, fmt.Errorf("%s has an imports list over several lines; add %s to it by hand", in.config, entry)
	default:
		line := []byte("imports = [" + entry + "] # added by hardenctl install\n")
		if loc := versionLine.FindIndex(old); loc != nil {
			s.data = append(append(append([]byte{}, old[:loc[1]]...), line...), old[loc[1]:]...)
		} else {
			s.data = append(line, old...)
		}
	}
	var check struct {
		Imports []string `toml:"imports"`
	}
	if err := toml.Unmarshal(s.data, &check); err != nil || len(check.Imports) != len(parsed.Imports)+1 {
		return nil, fmt.Errorf("could not add %s to the imports of %s; add it by hand", entry, in.config)
	}
	return s, nil
}

// plan says what apply will do to s.
func (in installer) plan(s *step) string {
	old, err := os.ReadFile(in.at(s.Path))
	switch {
	case err != nil:
		return "created"
	case bytes.Equal(old, s.data):
		return "unchanged"
	default:
		return "updated"
	}
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// apply writes s and records it; an updated file that install did not
// create itself is backed up first, once.
func (in installer) apply(s *step, rec *installRecord) error {
	file := in.at(s.Path)
	entry := rec.find(s.Path)
	if entry == nil {
		rec.Files = append(rec.Files, recordedFile{Path: s.Path, Config: s.Path == in.config})
		entry = &rec.Files[len(rec.Files)-1]
		if s.Action == "updated" {
			backup := s.Path + ".hardened-backup"
			old, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			fi, _ := os.Stat(file)
			if err := atomicfile.Write(in.at(backup), old, fi.Mode().Perm()); err != nil {
				return err
			}
			entry.Backup = backup
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	perm := s.perm
	if fi, err := os.Stat(file); err == nil && s.Path == in.config {
		perm = fi.Mode().Perm() // keep the admin's mode on config.toml
	}
	if err := atomicfile.Write(file, s.data, perm); err != nil {
		return err
	}
	entry.SHA256 = sum(s.data)
	return nil
}

// revert undoes apply during a failed install.
func (in installer) revert(s *step, rec installRecord) {
	e := rec.find(s.Path)
	if e != nil && e.Backup != "" {
		if old, err := os.ReadFile(in.at(e.Backup)); err == nil {
			atomicfile.Write(in.at(s.Path), old, 0o644)
			os.Remove(in.at(e.Backup))
			return
		}
	}
	if s.Action == "created" {
		os.Remove(in.at(s.Path))
	}
}

func (r *installRecord) find(path string) *recordedFile {
	for i := range r.Files {
		if r.Files[i].Path == path {
			return &r.Files[i]
		}
	}
	return nil
}

func (in installer) readRecord() installRecord {
	var rec installRecord
	if data, err := os.ReadFile(in.at(in.manifest)); err == nil {
		json.Unmarshal(data, &rec)
	}
	return rec
}

func (in installer) writeRecord(rec installRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(in.at(in.manifest)), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(in.at(in.manifest), append(data, '\n'), 0o644)
}

// validate has containerd load the resulting configuration, imports
// included; with --root it runs containerd inside the root (chroot).
func (in installer) validate() error {
	args := []string{"--config", in.config, "config", "dump"}
	var cmd *exec.Cmd
	if in.root == "/" || in.root == "" {
		cmd = exec.Command(in.containerdB, args...)
	} else {
		cmd = exec.Command("chroot", append([]string{in.root, in.containerdB}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		var ee *exec.ExitError
		if errors.Is(err, exec.ErrNotFound) || (errors.As(err, &ee) && ee.ExitCode() == 127) {
			msg = fmt.Sprintf("no containerd binary %q in %s; give its path with --containerd, or --skip-validate", in.containerdB, in.root)
		}
		return fmt.Errorf("%s config dump: %v: %s", in.containerdB, err, msg)
	}
	return nil
}

func (in installer) restartContainerd() error {
	out, err := exec.Command("sh", "-c", in.restartCommand).CombinedOutput()
	if err != nil {
		return fmt.Errorf("restart containerd (%s): %v: %s", in.restartCommand, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func runUninstall(c *cli.Context) error {
	in := newInstaller(c)
	data, err := os.ReadFile(in.at(in.manifest))
	if errors.Is(err, fs.ErrNotExist) {
		return report(c, nil, "not installed: no "+in.manifest)
	}
	if err != nil {
		return err
	}
	var rec installRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return fmt.Errorf("%s: %w", in.manifest, err)
	}
	var steps []*step
	kept, configChanged := 0, false
	for i := len(rec.Files) - 1; i >= 0; i-- {
		f := rec.Files[i]
		s := &step{Path: f.Path}
		steps = append(steps, s)
		cur, err := os.ReadFile(in.at(f.Path))
		switch {
		case err == nil && sum(cur) != f.SHA256 && !c.Bool("force"):
			s.Action, s.Why = "kept", "changed since the install (--force undoes it anyway)"
			kept++
			continue
		case f.Backup != "":
			s.Action, s.Why = "restored", "as it was before the install"
		default:
			s.Action = "removed"
		}
		configChanged = configChanged || f.Config || strings.HasSuffix(f.Path, ".toml")
		if in.dryRun {
			continue
		}
		if f.Backup != "" {
			old, err := os.ReadFile(in.at(f.Backup))
			if err != nil {
				return fmt.Errorf("restore %s: %w", f.Path, err)
			}
			fi, _ := os.Stat(in.at(f.Backup))
			if err := atomicfile.Write(in.at(f.Path), old, fi.Mode().Perm()); err != nil {
				return err
			}
			os.Remove(in.at(f.Backup))
		} else if err := os.Remove(in.at(f.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if in.dryRun {
		return report(c, steps, "dry run: nothing changed")
	}
	msg := "uninstalled"
	if kept > 0 {
		rec.Files = keptFiles(rec, steps)
		if err := in.writeRecord(rec); err != nil {
			return err
		}
		msg = fmt.Sprintf("%d files kept because they changed since the install", kept)
	} else {
		os.Remove(in.at(in.manifest))
	}
	if configChanged && in.restart {
		if err := in.restartContainerd(); err != nil {
			return err
		}
		msg += "; containerd restarted"
	}
	if err := report(c, steps, msg); err != nil {
		return err
	}
	if kept > 0 {
		return exitError{1}
	}
	return nil
}

func keptFiles(rec installRecord, steps []*step) []recordedFile {
	var out []recordedFile
	for _, f := range rec.Files {
		for _, s := range steps {
			if s.Path == f.Path && s.Action == "kept" {
				out = append(out, f)
			}
		}
	}
	return out
}

func report(c *cli.Context, steps []*step, msg string) error {
	if jsonOutput(c) {
		if steps == nil {
			steps = []*step{}
		}
		return writeJSON(c.App.Writer, map[string]any{"files": steps, "summary": msg})
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	if len(steps) > 0 {
		fmt.Fprintln(tw, "FILE\tACTION\tWHAT")
	}
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Path, s.Action, s.Why)
	}
	tw.Flush()
	fmt.Fprintln(c.App.Writer, msg)
	return nil
}
