package asterisk

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// RenderOML renders the OMniLeads side of t: the pjsip wizard file (names.Wizard) and
// the dialplan file (names.Dialplan), in that order, plus the #include lines that make
// oml_pjsip_wizard_custom.conf and oml_extensions_custom.conf read them. It runs
// CheckTrunk and checks the file names first; on any problem it returns an empty
// Rendered and every problem, wrapped with the site. The output depends on t and
// names only.
func RenderOML(t Trunk, names OMLFiles) (Rendered, error) {
	err := errors.Join(CheckTrunk(t), checkOMLFiles(names))
	if err != nil {
		return Rendered{}, fmt.Errorf("render oml side of site %q: %w", t.Site, err)
	}
	return Rendered{
		Files: []File{
			{Name: names.Wizard, Content: []byte(renderWizard(t))},
			{Name: names.Dialplan, Content: []byte(renderOMLDialplan(t))},
		},
		Includes: []Include{
			{Parent: names.WizardParent, Line: "#include " + names.Wizard},
			{Parent: names.ExtensionsParent, Line: "#include " + names.Dialplan},
		},
	}, nil
}

func checkOMLFiles(names OMLFiles) error {
	var errs []error
	for _, f := range []struct{ field, name string }{
		{"files.wizard", names.Wizard},
		{"files.dialplan", names.Dialplan},
		{"files.wizard_parent", names.WizardParent},
		{"files.extensions_parent", names.ExtensionsParent},
	} {
		if err := checkFileName(f.name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.field, err))
		}
	}
	if names.Wizard == names.Dialplan {
		errs = append(errs, fmt.Errorf("files.dialplan: %w: same file as files.wizard", ErrInvalidTrunk))
	}
	return errors.Join(errs...)
}

// renderWizard writes the pjsip wizard section with exactly the seed's keys in the
// seed's order, each once (the seed's docker block repeats endpoint/rtp_symmetric).
// Who authenticates as whom follows docs/asterisk.md#how-the-two-sides-relate: OML sends the PBX's trunk name
// as its user, and expects the PBX's defaultuser; both use the one chan_sip secret.
func renderWizard(t Trunk) string {
	nat := NATFlagsFor(t.Scenario)
	var b strings.Builder
	writeHeader(&b, t, roleOML)
	fmt.Fprintf(&b, "[%s]\n", t.OMLTrunkName)
	for _, kv := range [][2]string{
		{"type", "wizard"},
		{"transport", t.OMLTransport},
		{"accepts_registrations", "no"},
		{"sends_auth", "yes"},
		{"sends_registrations", "no"},
		{"accepts_auth", "yes"},
		{"endpoint/rtp_symmetric", yesNo(nat.RTPSymmetric)},
		{"endpoint/force_rport", yesNo(nat.ForceRport)},
		{"endpoint/rewrite_contact", yesNo(nat.RewriteContact)},
		{"endpoint/timers", "yes"},
		{"aor/qualify_frequency", strconv.Itoa(t.QualifyFrequency)},
		{"endpoint/allow", strings.Join(t.OMLCodecs, ",")},
		{"endpoint/dtmf_mode", "rfc4733"},
		{"endpoint/context", omlInboundContext},
		// JoinHostPort brackets an IPv6 address, which host:port would make ambiguous.
		{"remote_hosts", net.JoinHostPort(t.PBXAddress, strconv.Itoa(t.PBXPort))},
		{"inbound_auth/username", t.PBXUser},
		{"inbound_auth/password", t.Secret},
		{"outbound_auth/username", t.OMLUser},
		{"outbound_auth/password", t.Secret},
		{"endpoint/from_user", t.OMLUser},
	} {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return b.String()
}

// WizardText returns the body of t's pjsip wizard section (every key=value line of
// the wizard file, without the header comments and the [name] line): what
// OMniLeads keeps as a SIP trunk's text config (TroncalSIP.text_config), to which
// it adds the [name] line itself when it writes oml_pjsip_trunks.conf. It runs
// CheckTrunk first.
func WizardText(t Trunk) (string, error) {
	if err := CheckTrunk(t); err != nil {
		return "", fmt.Errorf("render oml trunk text of site %q: %w", t.Site, err)
	}
	full := renderWizard(t)
	_, body, ok := strings.Cut(full, "["+t.OMLTrunkName+"]\n")
	if !ok {
		return "", fmt.Errorf("render oml trunk text of site %q: %w: no section line", t.Site, ErrInvalidTrunk)
	}
	return body, nil
}
