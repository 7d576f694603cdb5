// Checks for the local Kafka broker started by scripts/services.sh. Run with the Java
// source launcher and the broker's jars (kafka-clients is among them):
//   java -cp '.riffle/cache/kafka/libs/*' scripts/kafka/KafkaCheck.java ready 127.0.0.1:9092
//   java -cp '.riffle/cache/kafka/libs/*' scripts/kafka/KafkaCheck.java tx    127.0.0.1:9092
// ready: the broker answers a metadata request (describeCluster + listTopics).
// tx:    a transactional producer commits 3 records and aborts 2; a read_committed consumer
//        sees exactly the 3, a read_uncommitted one sees all 5.
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class KafkaCheck {
  public static void main(String[] args) throws Exception {
    String mode = args.length > 0 ? args[0] : "ready";
    String bootstrap = args.length > 1 ? args[1] : "127.0.0.1:9092";
    switch (mode) {
      case "ready" -> ready(bootstrap);
      case "tx" -> tx(bootstrap);
      default -> { System.err.println("usage: KafkaCheck ready|tx BOOTSTRAP"); System.exit(2); }
    }
  }

  static Properties base(String bootstrap) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("request.timeout.ms", "5000");
    p.put("default.api.timeout.ms", "10000");
    return p;
  }

  static void ready(String bootstrap) throws Exception {
    try (Admin admin = Admin.create(base(bootstrap))) {
      var cluster = admin.describeCluster();
      var nodes = cluster.nodes().get(8, TimeUnit.SECONDS);
      var topics = admin.listTopics().names().get(8, TimeUnit.SECONDS);
      System.out.println("cluster " + cluster.clusterId().get() + ": " + nodes.size() + " broker(s), " + topics.size() + " topic(s)");
    }
  }

  static void tx(String bootstrap) throws Exception {
    String topic = "riffle-tx-check-" + UUID.randomUUID().toString().substring(0, 8);
    try (Admin admin = Admin.create(base(bootstrap))) {
      admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(20, TimeUnit.SECONDS);
      Properties pp = base(bootstrap);
      pp.put("transactional.id", topic + "-producer");
      pp.put("enable.idempotence", "true");
      pp.put("key.serializer", StringSerializer.class.getName());
      pp.put("value.serializer", StringSerializer.class.getName());
      try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
        producer.initTransactions();
        producer.beginTransaction();
        for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, "k" + i, "committed-" + i));
        producer.commitTransaction();
        producer.beginTransaction();
        for (int i = 0; i < 2; i++) producer.send(new ProducerRecord<>(topic, "k" + i, "aborted-" + i));
        producer.flush();
        producer.abortTransaction();
      }
      int committed = count(bootstrap, topic, "read_committed");
      int all = count(bootstrap, topic, "read_uncommitted");
      admin.deleteTopics(List.of(topic)).all().get(20, TimeUnit.SECONDS);
      System.out.println("read_committed=" + committed + " read_uncommitted=" + all);
      if (committed != 3 || all != 5) {
        System.err.println("transactions check FAILED (want 3 and 5)");
        System.exit(1);
      }
      System.out.println("transactions OK");
    }
  }

  static int count(String bootstrap, String topic, String isolation) {
    Properties cp = base(bootstrap);
    cp.put("isolation.level", isolation);
    cp.put("key.deserializer", StringDeserializer.class.getName());
    cp.put("value.deserializer", StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
      TopicPartition tp = new TopicPartition(topic, 0);
      consumer.assign(List.of(tp));
      consumer.seekToBeginning(List.of(tp));
      int n = 0;
      long deadline = System.currentTimeMillis() + 10_000;
      long end = consumer.endOffsets(List.of(tp)).get(tp);
      while (System.currentTimeMillis() < deadline && consumer.position(tp) < end) {
        n += consumer.poll(Duration.ofMillis(200)).count();
      }
      return n;
    }
  }
}
