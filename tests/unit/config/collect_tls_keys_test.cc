// collect.tls (the collector's TLS) and `tls:` on a `type: logsplice` output: keys read, errors
// at file:line:col, the files loaded at parse time, and a client certificate standing for the
// token on either side.

#include <catch2/catch.hpp>
#include <string>

#include "config/collect_keys.h"
#include "tests/support/test_env.h"
#include "tests/support/tls_test_certs.h"
#include "tests/unit/config/config_test_helpers.h"

namespace logsplice::config {
namespace {

std::string errorsOf(const CollectParseResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.toString() + "\n";
  return out;
}

// A collect section with `tls_lines` under `tls:` (indented four spaces) and `extra` after it.
std::string collectWith(const std::string& tls_lines, const std::string& extra = "") {
  return "collect:\n"
         "  listen: 127.0.0.1:7514\n"
         "  dir: /srv/mirror\n"
         "  tls:\n" +
         tls_lines + extra;
}

}  // namespace

TEST_CASE("collect.tls: every key is read, and a CA makes tokens optional", "[collect][tls]") {
  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  auto r = parseCollectConfigString(
      collectWith("    cert_file: " + certs.path("server.pem") + "\n    key_file: " +
                  certs.path("server.key") + "\n    ca_file: " + certs.path("ca.pem") +
                  "\n    min_version: \"1.3\"\n"),
      "c.yaml");
  INFO(errorsOf(r));
  REQUIRE(r.ok());
  REQUIRE(r.config->tls);
  const CollectTls& t = *r.config->tls;
  CHECK(t.cert_file == certs.path("server.pem"));
  CHECK(t.key_file == certs.path("server.key"));
  CHECK(t.ca_file == certs.path("ca.pem"));
  CHECK(t.min_version == 0x0304);
  CHECK(t.mark.line == 5);
  CHECK(r.config->tokens.empty());

  // Relative paths are the config file's directory's.
  auto rel = parseCollectConfigString(
      collectWith("    cert_file: server.pem\n    key_file: server.key\n"
                  "  tokens: { web-1: \"0123456789abcdef\" }\n"),
      certs.path("c.yaml"));
  INFO(errorsOf(rel));
  REQUIRE(rel.ok());
  CHECK(rel.config->tls->cert_file == certs.path("server.pem"));
  CHECK(rel.config->tls->ca_file.empty());
}

TEST_CASE("collect.tls: bad keys are errors at their file:line:col", "[collect][tls]") {
  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  const std::string pair =
      "    cert_file: " + certs.path("server.pem") + "\n    key_file: " + certs.path("server.key") + "\n";
  struct Case {
    std::string text;
    std::string says;
  };
  const Case cases[] = {
      // A client-only key: line 7 (after the pair), column 5.
      {collectWith(pair + "    verify: false\n", "  tokens: { a: \"0123456789abcdef\" }\n"),
       "c.yaml:7:5: 'tls.verify' is for outputs"},
      {collectWith(pair + "    min_version: \"1.1\"\n", "  tokens: { a: \"0123456789abcdef\" }\n"),
       "c.yaml:7:18: 'tls.min_version' must be \"1.2\" or \"1.3\""},
      {collectWith(pair + "    colour: blue\n", "  tokens: { a: \"0123456789abcdef\" }\n"),
       "c.yaml:7:5: unknown key 'colour' in 'tls'"},
      // The collector's own certificate is required.
      {collectWith("    ca_file: " + certs.path("ca.pem") + "\n"),
       "c.yaml:5:5: 'collect.tls' needs 'cert_file' and 'key_file'"},
      {collectWith("    cert_file: " + certs.path("server.pem") + "\n",
                   "  tokens: { a: \"0123456789abcdef\" }\n"),
       "c.yaml:5:5: 'tls.cert_file' and 'tls.key_file' go together"},
      // Without a CA nobody can authenticate by certificate: tokens stay required.
      {collectWith(pair), "c.yaml:2:3: missing required key 'tokens'"},
  };
  for (const Case& c : cases) {
    auto r = parseCollectConfigString(c.text, "c.yaml");
    CAPTURE(c.text);
    INFO(errorsOf(r));
    REQUIRE(r.errors.size() == 1);
    CHECK_THAT(r.errors[0].toString(), Catch::Contains(c.says));
  }
}

TEST_CASE("collect.tls: bad certificate files are errors naming the file", "[collect][tls]") {
  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  const std::string not_pem = dir.path() + "/not.pem";
  testing::writeFile(not_pem, "hello\n");
  const std::string tokens = "  tokens: { a: \"0123456789abcdef\" }\n";
  struct Case {
    std::string lines;
    std::string says;
  };
  const Case cases[] = {
      {"    cert_file: " + not_pem + "\n    key_file: " + certs.path("server.key") + "\n",
       "c.yaml:5:16: '" + not_pem + "' holds no PEM certificate"},
      {"    cert_file: " + certs.path("expired.pem") + "\n    key_file: " +
           certs.path("expired.key") + "\n",
       "c.yaml:5:16: certificate '" + certs.path("expired.pem") + "' has expired"},
      {"    cert_file: " + certs.path("server.pem") + "\n    key_file: " +
           certs.path("client.key") + "\n",
       "c.yaml:6:15: key '" + certs.path("client.key") + "' does not match certificate '" +
           certs.path("server.pem") + "'"},
      {"    cert_file: " + certs.path("server.pem") + "\n    key_file: " +
           certs.path("server.key") + "\n    ca_file: " + not_pem + "\n",
       "c.yaml:7:14: CA file '" + not_pem + "' holds no PEM certificate"},
      {"    cert_file: " + certs.path("server.pem") + "\n    key_file: " + dir.path() +
           "/missing.key\n",
       "c.yaml:6:15: cannot read '" + dir.path() + "/missing.key'"},
  };
  for (const Case& c : cases) {
    auto r = parseCollectConfigString(collectWith(c.lines, tokens), "c.yaml");
    CAPTURE(c.lines);
    INFO(errorsOf(r));
    REQUIRE(r.errors.size() == 1);
    CHECK_THAT(r.errors[0].toString(), Catch::Contains(c.says));
  }
}

TEST_CASE("type: logsplice output: tls, and a client certificate stands for the token",
          "[collect][tls]") {
  testing::TempDir dir;
  testing::TlsTestCerts certs(dir.path());
  auto output = [&](const std::string& lines) {
    return "inputs:\n- name: app\n  paths: [/var/log/app.log]\noutputs:\n- name: mirror\n"
           "  type: logsplice\n  addresses: [127.0.0.1:7514]\n  inputs: [app]\n" +
           lines;
  };
  Config c = parseOk(output("  tls:\n    ca_file: " + certs.path("ca.pem") + "\n    cert_file: " +
                            certs.path("client.pem") + "\n    key_file: " +
                            certs.path("client.key") + "\n"));
  const auto* ls = std::get_if<LogspliceOutput>(&c.outputs[0].kind);
  REQUIRE(ls);
  REQUIRE(ls->tcp.tls);
  CHECK(ls->tcp.tls->cert_file == certs.path("client.pem"));
  CHECK(ls->token.empty());

  // TLS without a client certificate: the token is still required.
  ParseResult no_cert = parse(output("  tls:\n    ca_file: " + certs.path("ca.pem") + "\n"));
  CHECK_FALSE(no_cert.ok());
  std::string text;
  for (const auto& e : no_cert.errors) text += e.toString() + "\n";
  INFO(text);
  CHECK(text.find("'token'") != std::string::npos);

  // A bad file is reported at its key.
  ParseResult bad = parse(output("  token: \"0123456789abcdef\"\n  tls:\n    ca_file: " +
                                 certs.path("client.key") + "\n"));
  REQUIRE(bad.errors.size() == 1);
  CHECK_THAT(bad.errors[0].toString(), Catch::Contains(":11:14: CA file '"));
}

}  // namespace logsplice::config
