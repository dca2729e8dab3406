module github.com/kgraph-dev/kgraph/tools

go 1.26.0

require (
	github.com/kgraph-dev/kgraph/events v0.0.0
	github.com/kgraph-dev/kgraph/libs v0.0.0
	github.com/kgraph-dev/kgraph/services/dedup v0.0.0
	github.com/kgraph-dev/kgraph/services/extractor v0.0.0
	github.com/kgraph-dev/kgraph/services/graph-writer v0.0.0
	github.com/kgraph-dev/kgraph/services/ingest-api v0.0.0
	github.com/kgraph-dev/kgraph/services/projection v0.0.0
	github.com/kgraph-dev/kgraph/services/query v0.0.0
	github.com/kgraph-dev/kgraph/services/vector-indexer v0.0.0
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace (
	github.com/kgraph-dev/kgraph/events => ../events
	github.com/kgraph-dev/kgraph/libs => ../libs
	github.com/kgraph-dev/kgraph/services/dedup => ../services/dedup
	github.com/kgraph-dev/kgraph/services/extractor => ../services/extractor
	github.com/kgraph-dev/kgraph/services/graph-writer => ../services/graph-writer
	github.com/kgraph-dev/kgraph/services/ingest-api => ../services/ingest-api
	github.com/kgraph-dev/kgraph/services/projection => ../services/projection
	github.com/kgraph-dev/kgraph/services/query => ../services/query
	github.com/kgraph-dev/kgraph/services/vector-indexer => ../services/vector-indexer
)

tool github.com/nats-io/nats-server/v2
