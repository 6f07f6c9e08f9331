package asterisk

// File is one managed file an agent writes, relative to the Asterisk config dir.
type File struct {
	Name    string
	Content []byte
}

// Include is the one line an agent adds (once) to a stock file so Asterisk reads a
// managed file. The managed file must exist before the include is added: a missing
// #include target makes Asterisk reject the including file (ASTERISK.md §4).
type Include struct {
	// Parent is the stock file that gets the line, e.g. sip_custom.conf.
	Parent string
	// Line is the exact directive, e.g. "#include pbxfleet_sip.conf".
	Line string
}

// Rendered is everything one side of a trunk needs on disk.
type Rendered struct {
	Files    []File
	Includes []Include
}

// PBXFiles names the managed files on the Issabel side.
type PBXFiles struct {
	// Peer holds the chan_sip peer; included from SIPParent.
	Peer string
	// Dialplan holds [from-internal-custom] and [pbxfleet-probe]; included from ExtensionsParent.
	Dialplan         string
	SIPParent        string
	ExtensionsParent string
}

// OMLFiles names the managed files on the OMniLeads side.
type OMLFiles struct {
	// Wizard holds the pjsip wizard section; included from WizardParent.
	Wizard string
	// Dialplan holds the probe context and guard; included from ExtensionsParent.
	Dialplan         string
	WizardParent     string
	ExtensionsParent string
}

// DefaultPBXFiles returns the file names used on an Issabel host (ASTERISK.md §4).
func DefaultPBXFiles() PBXFiles {
	return PBXFiles{
		Peer:             "pbxfleet_sip.conf",
		Dialplan:         "pbxfleet_extensions.conf",
		SIPParent:        "sip_custom.conf",
		ExtensionsParent: "extensions_custom.conf",
	}
}

// DefaultOMLFiles returns the file names used on an OMniLeads host (ASTERISK.md §4).
func DefaultOMLFiles() OMLFiles {
	return OMLFiles{
		Wizard:           "pbxfleet_pjsip_wizard.conf",
		Dialplan:         "pbxfleet_extensions.conf",
		WizardParent:     "oml_pjsip_wizard_custom.conf",
		ExtensionsParent: "oml_extensions_custom.conf",
	}
}

// ProbeContext is the dialplan context the agents originate probe calls into.
const ProbeContext = "pbxfleet-probe"

// ProbeDBFamily and ProbeDBKey locate the probe outcome in AstDB (ASTERISK.md §7).
const (
	ProbeDBFamily = "pbxfleet"
	ProbeDBKey    = "probe"
)
