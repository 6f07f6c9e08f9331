// Package omlobjects keeps the OMniLeads side of a site as OMniLeads objects:
// the SIP trunk (TroncalSIP, pjsip, its text config the wizard block pbxfleet
// renders), the outbound route to the PBX (RutaSaliente with its PatronDeDiscado
// and OrdenTroncal) and the inbound route of each DID (RutaEntrante). It drives
// OMniLeads' own code through its management shell (`manage.py shell`, a script
// on stdin): its models, its Redis families and its synchronizers, which write
// OMniLeads' configuration and reload Asterisk as they do for an object made in
// the web UI. It implements node.Objects; docs/omnileads.md says what it proves.
package omlobjects

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pbxfleet/pbxfleet/internal/release"
)

// Kind is how OMniLeads is deployed, which decides how its management shell is
// reached.
type Kind string

// The deployment kinds.
const (
	// KindCustomFile is the files-only mode (the default): the trunk is a wizard
	// section in oml_pjsip_wizard_custom.conf and no OMniLeads object is made.
	KindCustomFile Kind = "custom-file"
	// KindHost1x is OMniLeads 1.x installed on the host (/opt/omnileads).
	KindHost1x Kind = "host-1x"
	// KindDocker1x is OMniLeads 1.x in Docker (the Django container).
	KindDocker1x Kind = "docker-1x"
	// KindPodman2x is OMniLeads 2.x with podman and systemd (oml-uwsgi-server).
	KindPodman2x Kind = "podman-2x"
	// KindCompose2x is OMniLeads 2.x with docker compose (oml-uwsgi).
	KindCompose2x Kind = "compose-2x"
)

// Kinds lists every deployment kind, the default first.
func Kinds() []Kind {
	return []Kind{KindCustomFile, KindHost1x, KindDocker1x, KindPodman2x, KindCompose2x}
}

// ErrConfig marks an invalid omnileads section of the agent config.
var ErrConfig = errors.New("invalid omnileads config")

// ErrUnsupported marks an OMniLeads version the deployment kind does not support.
var ErrUnsupported = errors.New("unsupported OMniLeads")

// ErrOMniLeads marks a failure reported by OMniLeads or by the shell that runs
// its code.
var ErrOMniLeads = errors.New("omnileads")

// Config is the omnileads section of agents-node's config.
type Config struct {
	// Deployment is one of Kinds; empty means custom-file.
	Deployment Kind `yaml:"deployment"`
	// Container overrides the kind's container name (docker-1x, podman-2x,
	// compose-2x).
	Container string `yaml:"container"`
	// Manage, when set, is the whole argv that runs OMniLeads' `manage.py shell`
	// reading its script on stdin; it replaces the kind's command (for an
	// installation laid out differently, or a test).
	Manage []string `yaml:"manage"`
	// Version, when set, is taken as the OMniLeads version instead of the one its
	// settings report (OML_BRANCH), for builds that report none.
	Version string `yaml:"version"`
	// Timeout bounds one run of the management shell; default 90s.
	Timeout time.Duration `yaml:"timeout"`
	// RouteProbe makes the agent prove the outbound route with a call dialled
	// into OMniLeads' [oml-outr] after the trunk probe (docs/omnileads.md: off by
	// default, it was checked with a stand-in of OMniLeads' dial subroutine).
	RouteProbe bool `yaml:"route_probe"`
}

// Objects reports whether the config asks for OMniLeads objects (any kind but
// custom-file).
func (c Config) Objects() bool { return c.Deployment != "" && c.Deployment != KindCustomFile }

// Validate returns every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	known := false
	for _, k := range Kinds() {
		known = known || c.Deployment == k
	}
	if c.Deployment != "" && !known {
		names := make([]string, 0, 5)
		for _, k := range Kinds() {
			names = append(names, string(k))
		}
		errs = append(errs, fmt.Errorf("%w: deployment %q: want one of %s", ErrConfig, c.Deployment, strings.Join(names, ", ")))
	}
	if !c.Objects() && (c.Container != "" || len(c.Manage) > 0 || c.Version != "" || c.RouteProbe) {
		errs = append(errs, fmt.Errorf("%w: container, manage, version and route_probe apply to an objects deployment, not %s", ErrConfig, KindCustomFile))
	}
	if c.Deployment == KindHost1x && c.Container != "" {
		errs = append(errs, fmt.Errorf("%w: container: host-1x runs no container", ErrConfig))
	}
	if len(c.Manage) > 0 && c.Manage[0] == "" {
		errs = append(errs, fmt.Errorf("%w: manage: the first element must name a program", ErrConfig))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: timeout must not be negative", ErrConfig))
	}
	if c.Version != "" {
		if _, err := ParseVersion(c.Version); err != nil {
			errs = append(errs, fmt.Errorf("%w: version: %w", ErrConfig, err))
		}
	}
	return errors.Join(errs...)
}

// The paths and containers each kind assumes; Container and Manage override them.
const (
	managePy1x        = "/opt/omnileads/ominicontacto/manage.py"
	python1xHost      = "/opt/omnileads/virtualenv/bin/python3"
	container1xDocker = "oml-omniapp-prodenv"
	container2xPodman = "oml-uwsgi-server"
	container2xComp   = "oml-uwsgi"
	managePy2x        = "/opt/omnileads/ominicontacto/manage.py"
)

// Command returns the argv that runs OMniLeads' management shell for c, reading
// the script on stdin (the script, which holds the trunk secret, never appears
// in an argv).
func (c Config) Command() ([]string, error) {
	if len(c.Manage) > 0 {
		return append([]string(nil), c.Manage...), nil
	}
	pick := func(def string) string {
		if c.Container != "" {
			return c.Container
		}
		return def
	}
	switch c.Deployment {
	case KindHost1x:
		// 1.x runs the application as user omnileads with its environment in the
		// login profile (/etc/profile.d/omnileads_envars.sh).
		return []string{"su", "-", "omnileads", "-s", "/bin/bash", "-c", python1xHost + " " + managePy1x + " shell"}, nil
	case KindDocker1x:
		return []string{"docker", "exec", "-i", pick(container1xDocker), "python3", managePy1x, "shell"}, nil
	case KindPodman2x:
		return []string{"podman", "exec", "-i", pick(container2xPodman), "python3", managePy2x, "shell"}, nil
	case KindCompose2x:
		return []string{"docker", "exec", "-i", pick(container2xComp), "python3", managePy2x, "shell"}, nil
	}
	return nil, fmt.Errorf("%w: deployment %q makes no OMniLeads objects", ErrConfig, c.Deployment)
}

// ParseVersion reads an OMniLeads version as its settings report it
// (OML_BRANCH: "release-2.6.3", "1.33.2", "v2.4.0").
func ParseVersion(s string) (release.Version, error) {
	v, err := release.Parse(s)
	if err != nil {
		return release.Version{}, fmt.Errorf("%q is not an OMniLeads release number (want e.g. release-2.6.3 or 1.33.2)", s)
	}
	return v, nil
}

// Supported says whether kind can drive OMniLeads reporting version, with the
// reason when it cannot. 1.x kinds need a 1.x release; 2.x kinds a 2.x release.
// Within a major release the script checks the model fields it uses itself
// (a release without them is refused by name). Releases after 2.x are refused:
// nothing here was checked against them.
func Supported(kind Kind, version string) error {
	v, err := ParseVersion(version)
	if err != nil {
		return fmt.Errorf("%w: cannot tell which OMniLeads this is: %w; set omnileads.version in the agent config if its settings report no release", ErrUnsupported, err)
	}
	var want int
	switch kind {
	case KindHost1x, KindDocker1x:
		want = 1
	case KindPodman2x, KindCompose2x:
		want = 2
	default:
		return fmt.Errorf("%w: deployment %q makes no OMniLeads objects", ErrUnsupported, kind)
	}
	if v.Major != want {
		hint := "host-1x or docker-1x"
		if v.Major == 2 {
			hint = "podman-2x or compose-2x"
		}
		if v.Major > 2 {
			return fmt.Errorf("%w: OMniLeads %s is newer than any release pbxfleet knows (1.x, 2.x); use deployment custom-file", ErrUnsupported, v)
		}
		return fmt.Errorf("%w: OMniLeads %s is not a %d.x release, which deployment %s drives; it needs %s", ErrUnsupported, v, want, kind, hint)
	}
	return nil
}
