// The `tls:` block of a tcp output: every key read, bad keys and values reported at their
// file:line:col, and the files it names loaded at parse time (so `check` reports them):
// unreadable, not PEM, an expired certificate, a key that does not match its certificate.

#include "config/tls_keys.h"

#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "config/parse.h"
#include "sys/tcp_ulp.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_test_certs.h"

using namespace logsplice;
using namespace logsplice::config;

namespace {

std::string withTls(const std::string& tls_lines) {
  return "inputs:\n"
         "  - name: app\n"
         "    paths: [/var/log/app.log]\n"
         "outputs:\n"
         "  - name: central\n"
         "    type: tcp\n"
         "    addresses: [\"logs.example:6514\"]\n"
         "    inputs: [app]\n"
         "    tls:\n" +
         tls_lines;
}

std::string allErrors(const ParseResult& r) {
  std::ostringstream out;
  for (const ConfigError& e : r.errors) out << e.toString() << "\n";
  return out.str();
}

}  // namespace

TEST_CASE("tls: every key is read", "[config][tls]") {
  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  ParseResult r = parseConfigString(withTls("      ca_file: " + certs.path("ca.pem") +
                                            "\n"
                                            "      cert_file: " +
                                            certs.path("client.pem") +
                                            "\n"
                                            "      key_file: " +
                                            certs.path("client.key") +
                                            "\n"
                                            "      server_name: collector.example\n"
                                            "      verify: false\n"
                                            "      min_version: \"1.3\"\n"
                                            "      ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n"
                                            "      ciphersuites: TLS_AES_128_GCM_SHA256\n"
                                            "      ktls: \"off\"\n"),
                                    "test.yaml");
  INFO(allErrors(r));
  REQUIRE(r.ok());
  const auto& tcp = std::get<TcpOutput>(r.config->outputs[0].kind);
  REQUIRE(tcp.tls);
  CHECK(tcp.tls->ca_file == certs.path("ca.pem"));
  CHECK(tcp.tls->cert_file == certs.path("client.pem"));
  CHECK(tcp.tls->key_file == certs.path("client.key"));
  CHECK(tcp.tls->server_name == "collector.example");
  CHECK_FALSE(tcp.tls->verify);
  CHECK(tcp.tls->min_version == TLS1_3_VERSION);
  CHECK(tcp.tls->ciphers == "ECDHE-ECDSA-AES128-GCM-SHA256");
  CHECK(tcp.tls->ciphersuites == "TLS_AES_128_GCM_SHA256");
  CHECK(tcp.tls->ktls == KtlsMode::kOff);
  CHECK(tcp.tls->mark.line == 10);
}

TEST_CASE("tls: defaults, and no tls block means plain TCP", "[config][tls]") {
  ParseResult r = parseConfigString(withTls("      ktls: auto\n"), "test.yaml");
  INFO(allErrors(r));
  REQUIRE(r.ok());
  const auto& tcp = std::get<TcpOutput>(r.config->outputs[0].kind);
  REQUIRE(tcp.tls);
  CHECK(tcp.tls->verify);
  CHECK(tcp.tls->ca_file.empty());
  CHECK(tcp.tls->min_version == TLS1_2_VERSION);
  CHECK(tcp.tls->ktls == KtlsMode::kAuto);

  std::string plain = withTls("");
  plain = plain.substr(0, plain.rfind("    tls:"));
  ParseResult p = parseConfigString(plain, "test.yaml");
  INFO(allErrors(p));
  REQUIRE(p.ok());
  CHECK_FALSE(std::get<TcpOutput>(p.config->outputs[0].kind).tls);
}

TEST_CASE("tls: bad keys and values are errors at their line and column", "[config][tls]") {
  struct Case {
    std::string lines;
    std::string where;
    std::string says;
  };
  const Case cases[] = {
      {"      verfy: true\n", "test.yaml:10:7", "unknown key 'verfy'"},
      {"      verify: maybe\n", "test.yaml:10:15", "must be true or false"},
      {"      min_version: \"1.1\"\n", "test.yaml:10:20", "\"1.2\" or \"1.3\""},
      {"      ktls: sometimes\n", "test.yaml:10:13", "auto, require or off"},
      {"      ciphers: NOT-A-CIPHER\n", "test.yaml:10:16", "no usable cipher"},
      {"      ca_file: /nonexistent/ca.pem\n", "test.yaml:10:16",
       "cannot read '/nonexistent/ca.pem'"},
      {"      cert_file: /x.pem\n", "test.yaml:10:7", "go together"},
  };
  for (const Case& c : cases) {
    ParseResult r = parseConfigString(withTls(c.lines), "test.yaml");
    CAPTURE(c.lines);
    INFO(allErrors(r));
    REQUIRE(r.errors.size() == 1);
    CHECK_THAT(r.errors[0].toString(), Catch::StartsWith(c.where) && Catch::Contains(c.says));
  }
  ParseResult r = parseConfigString(withTls("      - a\n"), "test.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK_THAT(r.errors[0].toString(), Catch::Contains("'tls' must be a map"));
}

TEST_CASE("tls: bad files are config errors naming the file", "[config][tls]") {
  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  const std::string not_pem = dir.path() + "/not.pem";
  testing::writeFile(not_pem, "hello\n");
  struct Case {
    std::string lines;
    std::string says;
  };
  const Case cases[] = {
      {"      ca_file: " + not_pem + "\n", "CA file '" + not_pem + "' holds no PEM certificate"},
      {"      cert_file: " + certs.path("expired.pem") +
           "\n      key_file: " + certs.path("expired.key") + "\n",
       "certificate '" + certs.path("expired.pem") + "' has expired"},
      {"      cert_file: " + certs.path("client.pem") +
           "\n      key_file: " + certs.path("server.key") + "\n",
       "key '" + certs.path("server.key") + "' does not match certificate '" +
           certs.path("client.pem") + "'"},
      {"      cert_file: " + not_pem + "\n      key_file: " + certs.path("client.key") + "\n",
       "'" + not_pem + "' holds no PEM certificate"},
      {"      cert_file: " + certs.path("client.pem") + "\n      key_file: " + not_pem + "\n",
       "'" + not_pem + "' holds no PEM private key"},
  };
  for (const Case& c : cases) {
    ParseResult r = parseConfigString(withTls(c.lines), "test.yaml");
    CAPTURE(c.lines);
    INFO(allErrors(r));
    REQUIRE(r.errors.size() == 1);
    CHECK_THAT(r.errors[0].toString(), Catch::StartsWith("test.yaml:1") && Catch::Contains(c.says));
  }
  CHECK(tlsFilesProblem(TlsConfig{}).empty());
}

TEST_CASE("tls: relative file paths are taken from the config file's directory", "[config][tls]") {
  CHECK(resolveTlsPath("/etc/logsplice/logsplice.yaml", "tls/ca.pem") ==
        "/etc/logsplice/tls/ca.pem");
  CHECK(resolveTlsPath("/etc/logsplice/logsplice.yaml", "/abs/ca.pem") == "/abs/ca.pem");
  CHECK(resolveTlsPath("conf/logsplice.yaml", "ca.pem") == "conf/ca.pem");
  CHECK(resolveTlsPath("logsplice.yaml", "ca.pem") == "ca.pem");  // the working directory
  CHECK(resolveTlsPath("/etc/logsplice.yaml", "") == "");

  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  const std::string config = dir.path() + "/logsplice.yaml";
  testing::writeFile(config, withTls("      ca_file: ca.pem\n"
                                     "      cert_file: ./client.pem\n"
                                     "      key_file: client.key\n"));
  ParseResult r = parseConfigFile(config);
  INFO(allErrors(r));
  REQUIRE(r.ok());
  const auto& tls = *std::get<TcpOutput>(r.config->outputs[0].kind).tls;
  CHECK(tls.ca_file == certs.path("ca.pem"));
  CHECK(tls.cert_file == dir.path() + "/./client.pem");
  CHECK(tls.key_file == certs.path("client.key"));
  CHECK(tlsFilesProblem(tls).empty());

  // A relative name that does not exist there is reported with the path that was tried.
  testing::writeFile(config, withTls("      ca_file: missing-ca.pem\n"));
  ParseResult bad = parseConfigFile(config);
  REQUIRE(bad.errors.size() == 1);
  CHECK_THAT(bad.errors[0].toString(),
             Catch::StartsWith(config + ":10:16") &&
                 Catch::Contains("cannot read '" + dir.path() + "/missing-ca.pem'"));
}

TEST_CASE("tls: ktls require is refused by check where the kernel has no tls ULP",
          "[config][tls][ktls]") {
  ParseResult r = parseConfigString(withTls("      ktls: require\n"), "test.yaml");
  if (sys::tcpUlpAvailable("tls")) {
    // This kernel offers kTLS: require is a valid promise here.
    INFO(allErrors(r));
    CHECK(r.ok());
    CHECK(std::get<TcpOutput>(r.config->outputs[0].kind).tls->ktls == KtlsMode::kRequire);
  } else {
    REQUIRE(r.errors.size() == 1);
    // At the `ktls` key, saying why.
    CHECK_THAT(r.errors[0].toString(), Catch::StartsWith("test.yaml:10:7") &&
                                           Catch::Contains("no kTLS") &&
                                           Catch::Contains("tcp_available_ulp"));
  }
}
