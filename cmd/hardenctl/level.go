package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hardened-runtime/hardened/internal/imagefs"
	"github.com/hardened-runtime/hardened/internal/userns"
	"github.com/hardened-runtime/hardened/policy"
	"github.com/hardened-runtime/hardened/profiles"
	"github.com/hardened-runtime/hardened/spec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var levelFlags = []cli.Flag{
	outputFlag, apparmorFlag, portSysctlFlag, idmapFlag,
	&cli.StringFlag{Name: "userns-range", Value: "1879048192:65536", Usage: "the host ids <first>:<count> the shim reserves for the pod's user namespace (a root image's, under user.namespace auto): any free range of its window, the first one here; none: the shim could reserve none"},
	&cli.StringFlag{Name: "level", Aliases: []string{"l"}, Usage: "level to apply (baseline, restricted, strict, or one of the policy's); default: what the policy picks"},
	&cli.StringFlag{Name: "policy", Aliases: []string{"p"}, Value: policy.DefaultPath, Usage: "node policy file; a missing file means the built-in default (restricted)"},
	&cli.StringFlag{Name: "image", Usage: "image reference, for the policy's image rules (default: the spec's io.kubernetes.cri.image-name annotation)"},
	&cli.StringFlag{Name: "namespace", Value: "default", Usage: "containerd namespace, for the policy's rules"},
	&cli.StringSliceFlag{Name: "image-volume", Usage: "a VOLUME the image declares (repeat); gets what the level's rootfs.volumes says"},
	&cli.StringFlag{Name: "image-rootfs", Usage: "harden, check: the image's root filesystem (a directory): the level's rootfs.statePaths that it has are made writable, as the shim does (run and learn read the image they run)"},
	&cli.StringFlag{Name: "image-workdir", Usage: "harden, check: the image's WORKDIR, below which relative rootfs.statePaths are (default: the spec's process.cwd)"},
	// What the shim learns from containerd and the node: which host files
	// are the container's own (mounts), which cgroup is (cgroups).
	&cli.StringFlag{Name: "containerd-root", Value: "/var/lib/containerd", Usage: "containerd's root directory (CRI's per-pod files, image VOLUME directories)"},
	&cli.StringFlag{Name: "containerd-state", Value: "/run/containerd", Usage: "containerd's state directory (CRI's shm, its sockets)"},
	&cli.StringFlag{Name: "kubelet-root", Value: policy.DefaultKubeletRoot, Usage: "the kubelet's root directory (each pod's volumes)"},
	&cli.StringFlag{Name: "id", Usage: "the container's id (default: the last element of linux.cgroupsPath)"},
	&cli.StringFlag{Name: "sandbox-id", Usage: "the CRI pod's sandbox id (default: the spec's io.kubernetes.cri.sandbox-id annotation, which the shim only takes once containerd's records confirm it)"},
	&cli.StringFlag{Name: "pod-uid", Usage: "the CRI pod's uid (default: the spec's io.kubernetes.cri.sandbox-uid annotation, likewise)"},
}

// containerFacts is what the shim would know of the container: from the
// flags, else from the spec itself (a config.json as containerd wrote it).
func containerFacts(c *cli.Context, s *specs.Spec, file string) spec.ContainerInfo {
	ctr := spec.ContainerInfo{Namespace: c.String("namespace"), ID: c.String("id"),
		SandboxID: c.String("sandbox-id"), PodUID: c.String("pod-uid")}
	if file != "-" {
		// A config.json's bundle is its directory: rule root-path allows
		// <bundle>/rootfs as well as the relative rootfs.
		if abs, err := filepath.Abs(file); err == nil {
			ctr.Bundle = filepath.Dir(abs)
		}
	}
	if ctr.ID == "" && s.Linux != nil && s.Linux.CgroupsPath != "" {
		p := s.Linux.CgroupsPath
		ctr.ID = p[strings.LastIndexAny(p, "/:")+1:]
	}
	if ctr.SandboxID == "" {
		ctr.SandboxID = s.Annotations["io.kubernetes.cri.sandbox-id"]
	}
	if ctr.PodUID == "" {
		ctr.PodUID = s.Annotations["io.kubernetes.cri.sandbox-uid"]
	}
	return ctr
}

// pickLevel resolves the level as the shim would, or takes --level.
func pickLevel(c *cli.Context, s *specs.Spec) (*profiles.Level, string, error) {
	pol, err := policy.Load(c.String("policy"))
	if err != nil {
		return nil, "", err
	}
	if name := c.String("level"); name != "" {
		l, ok := pol.Level(name)
		if !ok {
			return nil, "", usageError{fmt.Sprintf("--level %q: unknown level (known: %s)", name, strings.Join(pol.LevelNames(), ", "))}
		}
		return l, "--level " + name, nil
	}
	img := c.String("image")
	if img == "" {
		img = s.Annotations["io.kubernetes.cri.image-name"]
	}
	d, err := pol.Resolve(policy.Workload{
		KubernetesNamespace: s.Annotations["io.kubernetes.cri.sandbox-namespace"],
		ContainerdNamespace: c.String("namespace"),
		Image:               img,
		Annotations:         s.Annotations,
	})
	if err != nil {
		return nil, "", err
	}
	return d.Level, fmt.Sprintf("%s (%s, %s)", d.Reason, pol.Source, d.Mode), nil
}

// input is what harden and check work on.
type input struct {
	spec   *specs.Spec
	level  *profiles.Level
	why    string
	inputs spec.Inputs
}

// loadInput reads the CONFIG.JSON argument and resolves the level and the
// host facts, for harden and check alike.
func loadInput(c *cli.Context) (*input, error) {
	if c.NArg() != 1 {
		return nil, usageError{c.Command.Name + ": want one CONFIG.JSON (or - for stdin), after the flags"}
	}
	s, _, err := readSpecFile(c.Args().First(), c.App.Reader)
	if err != nil {
		return nil, err
	}
	level, why, err := pickLevel(c, s)
	if err != nil {
		return nil, err
	}
	host, err := hostFacts(c)
	if err != nil {
		return nil, err
	}
	host.ContainerdRoot, host.ContainerdState, host.KubeletRoot = c.String("containerd-root"), c.String("containerd-state"), c.String("kubelet-root")
	host.RuntimeSockets = []string{filepath.Join(host.ContainerdState, "containerd.sock"), filepath.Join(host.ContainerdState, "containerd.sock.ttrpc")}
	ctr := containerFacts(c, s, c.Args().First())
	if r := c.String("userns-range"); r != "none" {
		first, size, err := userns.ParseRange(r)
		if err != nil || size != userns.Size {
			return nil, usageError{fmt.Sprintf("--userns-range %q: want <first host id>:%d, or none", r, userns.Size)}
		}
		ctr.UserNamespace = spec.IDRange{HostID: first, Size: size}
	} else {
		ctr.UserNamespaceUnavailable = "the shim could reserve no range of host ids (--userns-range none)"
	}
	ctr.VolumeDir = spec.TaskVolumeDir(host.ContainerdRoot, ctr.Namespace, ctr.ID)
	img := spec.ImageInfo{Volumes: c.StringSlice("image-volume"), WorkingDir: c.String("image-workdir")}
	if dir := c.String("image-rootfs"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		root, err := imagefs.New(abs)
		if err != nil {
			return nil, err
		}
		img.Rootfs = root
	}
	return &input{spec: s, level: level, why: why,
		inputs: spec.Inputs{Host: host, Image: img, Container: ctr}}, nil
}
