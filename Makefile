# kgraph — see README.md. Every module is built and tested on its own with
# GOWORK=off, which proves that its go.mod (with replace directives to the
# sibling modules) is complete; go.work is for editors and `go run`.

MODULES := events libs services/dedup services/extractor services/graph-writer \
           services/ingest-api services/projection services/query services/vector-indexer tools
SERVICES := ingest-api dedup extractor graph-writer vector-indexer query projection
GO ?= go
DATA ?= data
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_FLAGS ?= -race -count=1 -timeout 30m

.PHONY: all build run test test-short soak bench corpusbench loadtest lint fmt tidy generate clean help neo4j-start neo4j-stop

all: lint test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build kg and the seven service binaries into bin/
	@mkdir -p bin
	$(GO) build -o bin/kg ./tools/cmd/kg
	@for s in $(SERVICES); do echo "$(GO) build -o bin/$$s ./services/$$s/cmd/$$s"; \
		$(GO) build -o bin/$$s ./services/$$s/cmd/$$s || exit 1; done

run: ## run kgraph in one process (embedded NATS and stores, data in ./data)
	$(GO) run ./tools/cmd/kg serve --no-auth --data $(DATA)

test: ## install/start the test backends (Redis, Neo4j test server), run every module's tests
	@TEST_FLAGS="$(TEST_FLAGS)" tools/scripts/test.sh

test-short: ## the tests without the multi-process end-to-end test
	@$(MAKE) --no-print-directory test TEST_FLAGS="-race -count=1 -short"

soak: ## run the tests that show a stalled consumer many times (a rare race; minutes)
	cd libs && GOWORK=off $(GO) test -count=20 -run='^TestConsumerKeepsPullingBurstAfterBurst$$' ./bus/
	cd services/extractor && GOWORK=off $(GO) test -count=2000 -run='^TestStoppedJobIsReadOnce$$' .

bench: ## run the benchmarks and print the machine
	@echo "machine: $$(nproc) cores, $$(free -g | awk '/Mem:/{print $$2}') GiB, $$(uname -srm), $$($(GO) version)"
	cd libs && GOWORK=off $(GO) test -run='^$$' -bench=. -benchmem ./sqlitegraph/ ./sqlitevec/
	cd services/extractor && GOWORK=off $(GO) test -run='^$$' -bench=. -benchmem ./internal/...
	cd tools && GOWORK=off $(GO) test -run='^$$' -bench=. -benchmem -benchtime=3x ./internal/serve/
	cd services/ingest-api && GOWORK=off $(GO) test -run='^$$' -bench=JobListing -benchtime=10x .
	cd services/query && GOWORK=off $(GO) test -run='^$$' -bench=Corpus -benchtime=40x .

corpusbench: ## kgraph at corpus scale: 10,000 generated documents in waves through kg serve (docs/benchmarks.md)
	$(GO) build -o bin/kg ./tools/cmd/kg
	$(GO) run ./tools/cmd/kgcorpus -kg bin/kg -docs 10000 -wave 1000

loadtest: ## the REST edge under load next to a bare chi handler (docs/benchmarks.md)
	$(GO) build -o bin/kg ./tools/cmd/kg
	$(GO) run ./tools/cmd/kgload -kg bin/kg

neo4j-start: ## start the Neo4j test server on 127.0.0.1:7687 (data in .tmp/neo4j)
	tools/neo4j-testserver/start.sh 7687 .tmp/neo4j

neo4j-stop: ## stop it
	tools/neo4j-testserver/stop.sh .tmp/neo4j

lint: ## gofmt, go vet and staticcheck on every module
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do echo "== vet + staticcheck $$m"; \
		(cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) run $(STATICCHECK) ./...); done

fmt: ## format the code
	gofmt -w $(MODULES)

tidy: ## go mod tidy in every module
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy); done

generate: ## regenerate the event JSON Schemas from the Go structs
	cd events && $(GO) generate ./...

clean: ## remove build output and the default data directory
	rm -rf bin $(DATA)
