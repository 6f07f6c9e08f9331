package omlobjects_test

import (
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// The agent drives OMniLeads objects through node.Objects.
var _ node.Objects = (*omlobjects.Objects)(nil)
