package dev.kgraph.neo4jtestserver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.harness.Neo4j;
import org.neo4j.harness.Neo4jBuilders;

/**
 * Runs the Neo4j engine in this process with only Bolt enabled, on 127.0.0.1, without authentication
 * or encryption: a database for integration tests, never for data that matters.
 *
 * <p>Usage: {@code java -Xmx1g -jar neo4j-testserver.jar [--port 7687] [--data DIR]}. Prints {@code
 * NEO4J READY bolt://127.0.0.1:PORT} once Bolt accepts connections and shuts the database down on
 * SIGTERM or SIGINT. The harness keeps the store in a fresh folder under DIR and removes it on
 * shutdown, so every start begins empty.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("neo4j-testserver: " + e.getMessage());
      System.err.println("usage: java -jar neo4j-testserver.jar [--port PORT] [--data DIR]");
      System.exit(2);
      return;
    }
    Files.createDirectories(options.data);

    Neo4j neo4j =
        Neo4jBuilders.newInProcessBuilder(options.data)
            .withDisabledServer()
            .withConfig(HttpConnector.enabled, false)
            .withConfig(HttpsConnector.enabled, false)
            .withConfig(GraphDatabaseSettings.auth_enabled, false)
            .withConfig(BoltConnector.enabled, true)
            .withConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", options.port))
            .withConfig(BoltConnector.advertised_address, new SocketAddress("127.0.0.1", options.port))
            .withConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
            // Small on purpose: the test machines have 2 cores and share memory with the tests.
            .withConfig(GraphDatabaseSettings.pagecache_memory, 256L * 1024 * 1024)
            // Bolt otherwise waits a 5 s quiet period (twice) before it lets the process exit.
            .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
            .withConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(5))
            .build();

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    neo4j.close();
                    System.out.println("NEO4J STOPPED");
                  } finally {
                    stopped.countDown();
                  }
                },
                "neo4j-testserver-shutdown"));

    // build() returns once the database and its Bolt connector are started.
    System.out.println("NEO4J READY bolt://127.0.0.1:" + neo4j.boltURI().getPort());
    System.out.flush();
    stopped.await();
  }

  private record Options(int port, Path data) {
    static Options parse(String[] args) throws IOException {
      int port = 7687;
      Path data = Path.of("target", "neo4j-data");
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException("missing value for " + arg);
        }
        String value = args[++i];
        switch (arg) {
          case "--port" -> {
            try {
              port = Integer.parseInt(value);
            } catch (NumberFormatException e) {
              throw new IllegalArgumentException("bad port " + value);
            }
            if (port < 0 || port > 65535) {
              throw new IllegalArgumentException("bad port " + value);
            }
          }
          case "--data" -> data = Path.of(value);
          default -> throw new IllegalArgumentException("unknown argument " + arg);
        }
      }
      return new Options(port, data.toAbsolutePath());
    }
  }
}
