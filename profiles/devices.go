package profiles

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Device names a device by what the kernel checks when a process opens a
// device node: its type and its major and minor numbers. The path is only
// a name for people; a device node with these numbers is the same device
// wherever it is created.
type Device struct {
	// Path is where the device usually lives (/dev/fuse), for messages.
	// Optional.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Type is c (character device) or b (block device).
	Type string `json:"type" yaml:"type"`
	// Major is the device's major number.
	Major int64 `json:"major" yaml:"major"`
	// Minor is the device's minor number; nil means every minor of Major
	// (as runc allows c 136:* for the pseudo-terminals).
	Minor *int64 `json:"minor,omitempty" yaml:"minor,omitempty"`
}

// String renders the device as a device cgroup rule names it: "c 10:229",
// "c 136:*".
func (d Device) String() string {
	minor := "*"
	if d.Minor != nil {
		minor = strconv.FormatInt(*d.Minor, 10)
	}
	return d.Type + " " + strconv.FormatInt(d.Major, 10) + ":" + minor
}

// Matches reports whether a device of type typ (c, b, or u, which runc
// treats as c) with the given numbers is this device. A minor below zero
// is the cgroup wildcard: it matches only a Device for every minor.
func (d Device) Matches(typ string, major, minor int64) bool {
	if typ == "u" {
		typ = "c"
	}
	if typ != d.Type || major != d.Major {
		return false
	}
	return d.Minor == nil || (minor >= 0 && minor == *d.Minor)
}

func (d Device) validate() error {
	var errs []string
	if d.Type != "c" && d.Type != "b" {
		errs = append(errs, fmt.Sprintf("type %q is not c or b", d.Type))
	}
	if d.Major <= 0 {
		errs = append(errs, fmt.Sprintf("major %d must be above 0", d.Major))
	}
	if d.Minor != nil && *d.Minor < 0 {
		errs = append(errs, fmt.Sprintf("minor %d must not be negative (leave it out for every minor)", *d.Minor))
	}
	if d.Path != "" && (!strings.HasPrefix(d.Path, "/dev/") || path.Clean(d.Path) != d.Path) {
		errs = append(errs, fmt.Sprintf("path %q must be a clean path under /dev/", d.Path))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %s", d, strings.Join(errs, "; "))
	}
	return nil
}

// UnmarshalYAML reads a device as "c 10:229 /dev/fuse" (type,
// major:minor with * for every minor, an optional path) or as a mapping
// {type, major, minor, path}. A bare path is an error that says how to
// give the numbers: allowing a path would allow whatever device is
// created there.
func (d *Device) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := ParseDevice(n.Value)
		if err != nil {
			return fmt.Errorf("line %d: devices.allow: %w", n.Line, err)
		}
		*d = v
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k := n.Content[i].Value; k {
			case "path", "type", "major", "minor":
			default:
				return fmt.Errorf("line %d: devices.allow: field %s not found (want type, major, minor, path)", n.Content[i].Line, k)
			}
		}
		type plain Device
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		*d = Device(p)
		return nil
	}
	return fmt.Errorf("line %d: devices.allow: want \"c 10:229 /dev/fuse\" or {type: c, major: 10, minor: 229}", n.Line)
}

// ParseDevice parses "TYPE MAJOR:MINOR [PATH]", such as "c 10:229
// /dev/fuse" or "c 195:*".
func ParseDevice(s string) (Device, error) {
	f := strings.Fields(s)
	if len(f) == 1 && strings.HasPrefix(f[0], "/") {
		return Device{}, fmt.Errorf("%q: give the device's type and numbers, \"TYPE MAJOR:MINOR %s\" as ls -l %s shows them (for example \"c 10:229 /dev/fuse\"): a path alone would allow whatever device is created there", s, f[0], f[0])
	}
	if len(f) < 2 || len(f) > 3 {
		return Device{}, fmt.Errorf("%q: want \"TYPE MAJOR:MINOR [PATH]\", such as \"c 10:229 /dev/fuse\"", s)
	}
	d := Device{Type: f[0]}
	if len(f) == 3 {
		d.Path = f[2]
	}
	maj, min, ok := strings.Cut(f[1], ":")
	var err error
	if d.Major, err = strconv.ParseInt(maj, 10, 64); err != nil || !ok {
		return Device{}, fmt.Errorf("%q: %q is not MAJOR:MINOR", s, f[1])
	}
	if min != "*" {
		m, err := strconv.ParseInt(min, 10, 64)
		if err != nil {
			return Device{}, fmt.Errorf("%q: minor %q is not a number or *", s, min)
		}
		d.Minor = &m
	}
	if err := d.validate(); err != nil {
		return Device{}, errors.New(strings.TrimPrefix(err.Error(), d.String()+": "))
	}
	return d, nil
}

func minorOf(m int64) *int64 { return &m }

// StandardDevices are the devices every container gets from runc (device
// nodes and device cgroup rules); a spec may list them without asking for
// anything. Their numbers are fixed by the kernel (Documentation/admin-guide/devices.txt).
var StandardDevices = []Device{
	{"/dev/null", "c", 1, minorOf(3)},
	{"/dev/zero", "c", 1, minorOf(5)},
	{"/dev/full", "c", 1, minorOf(7)},
	{"/dev/random", "c", 1, minorOf(8)},
	{"/dev/urandom", "c", 1, minorOf(9)},
	{"/dev/tty", "c", 5, minorOf(0)},
	{"/dev/console", "c", 5, minorOf(1)},
	{"/dev/ptmx", "c", 5, minorOf(2)},
	{"/dev/pts/*", "c", 136, nil},
}
