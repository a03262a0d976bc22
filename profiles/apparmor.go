package profiles

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"
)

//go:embed apparmor/hardened-default.tmpl
var apparmorTemplate string

var apparmorTmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("apparmor").Parse(apparmorTemplate))
})

var profileName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// AppArmorProfile renders the AppArmor profile text called name, for a host
// whose container manager runs confined by daemonProfile ("unconfined" when
// empty). The text is what `apparmor_parser -r` loads.
func AppArmorProfile(name, daemonProfile string) (string, error) {
	if !profileName.MatchString(name) {
		return "", fmt.Errorf("apparmor profile name %q: want letters, digits, '.', '_' or '-'", name)
	}
	if daemonProfile == "" {
		daemonProfile = "unconfined"
	}
	var b strings.Builder
	err := apparmorTmpl().Execute(&b, struct{ Name, DaemonProfile string }{name, daemonProfile})
	return b.String(), err
}
