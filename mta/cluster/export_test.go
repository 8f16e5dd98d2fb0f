package cluster

// The in-package test helpers that the external tests (package
// cluster_test, which may import natstest) share.
var (
	CtxFor      = ctxFor
	ReadSeq     = readSeq
	PublishRead = publishRead
	StartNode   = startNode
)
