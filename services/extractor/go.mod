module github.com/kgraph-dev/kgraph/services/extractor

go 1.26.0

require (
	github.com/kgraph-dev/kgraph/events v0.0.0
	github.com/kgraph-dev/kgraph/libs v0.0.0
)

require (
	github.com/dlclark/regexp2/v2 v2.5.1 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/tiktoken-go/tokenizer v0.10.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace (
	github.com/kgraph-dev/kgraph/events => ../../events
	github.com/kgraph-dev/kgraph/libs => ../../libs
)
