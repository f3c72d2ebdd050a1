#include "config/validate.h"

#include <catch2/catch.hpp>

namespace logsplice::config {
namespace {

InputConfig input(std::string name, Mark mark) {
  InputConfig in;
  in.name = std::move(name);
  in.mark = mark;
  in.paths = {"/var/log/x.log"};
  return in;
}

OutputConfig tcpOutput(std::string name, Mark mark, std::vector<std::string> inputs) {
  OutputConfig out;
  out.name = std::move(name);
  out.mark = mark;
  out.inputs = std::move(inputs);
  out.kind = TcpOutput{{sys::HostPort{"127.0.0.1", 5140}}};
  return out;
}

OutputConfig archiveOutput(std::string name, Mark mark, std::string dir) {
  OutputConfig out;
  out.name = std::move(name);
  out.mark = mark;
  out.inputs = {"a"};
  ArchiveOutput archive;
  archive.dir = std::move(dir);
  out.kind = archive;
  return out;
}

Config baseConfig() {
  Config config;
  config.source_path = "test.yaml";
  config.inputs.push_back(input("a", {2, 5}));
  config.outputs.push_back(tcpOutput("central", {8, 5}, {"a"}));
  return config;
}

TEST_CASE("validateConfig accepts a consistent config", "[config][validate]") {
  CHECK(validateConfig(baseConfig()).empty());
}

TEST_CASE("validateConfig reports duplicate input names with both places", "[config][validate]") {
  Config config = baseConfig();
  config.inputs.push_back(input("a", {5, 5}));
  std::vector<ConfigError> errors = validateConfig(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].file == "test.yaml");
  CHECK(errors[0].mark.line == 5);
  CHECK(errors[0].mark.column == 5);
  CHECK(errors[0].message == "duplicate input name 'a' (first defined at 2:5)");
  CHECK(errors[0].toString() == "test.yaml:5:5: duplicate input name 'a' (first defined at 2:5)");
}

TEST_CASE("validateConfig reports duplicate output names", "[config][validate]") {
  Config config = baseConfig();
  config.outputs.push_back(tcpOutput("central", {12, 5}, {"a"}));
  std::vector<ConfigError> errors = validateConfig(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].mark.line == 12);
  CHECK(errors[0].message == "duplicate output name 'central' (first defined at 8:5)");
}

TEST_CASE("an input and an output may share a name", "[config][validate]") {
  Config config = baseConfig();
  config.outputs[0].name = "a";
  CHECK(validateConfig(config).empty());
}

TEST_CASE("validateConfig reports routes from unknown inputs and repeated routes",
          "[config][validate]") {
  Config config = baseConfig();
  config.outputs[0].inputs = {"a", "ngnix", "a"};
  std::vector<ConfigError> errors = validateConfig(config);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].message == "output 'central' routes from unknown input 'ngnix'");
  CHECK(errors[0].mark.line == 8);
  CHECK(errors[1].message == "output 'central' lists input 'a' more than once");
  CHECK(errors[1].mark.line == 8);  // no item marks (a config built in code): the output's
}

TEST_CASE("validateConfig reports a bad route at its list item", "[config][validate]") {
  Config config = baseConfig();
  config.outputs[0].inputs = {"a", "ngnix", "a"};
  config.outputs[0].input_marks = {{11, 14}, {12, 9}, {13, 9}};
  std::vector<ConfigError> errors = validateConfig(config);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].toString() ==
        "test.yaml:12:9: output 'central' routes from unknown input 'ngnix'");
  CHECK(errors[1].toString() ==
        "test.yaml:13:9: output 'central' lists input 'a' more than once");
}

TEST_CASE("validateConfig reports two archive outputs sharing a dir", "[config][validate]") {
  Config config = baseConfig();
  config.outputs.push_back(archiveOutput("one", {10, 5}, "/var/log/archive"));
  config.outputs.push_back(archiveOutput("two", {14, 5}, "/var/log/./archive//"));
  config.outputs.push_back(archiveOutput("three", {18, 5}, "/var/log/archive2"));
  std::vector<ConfigError> errors = validateConfig(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].mark.line == 14);
  CHECK(errors[0].message ==
        "output 'two' writes to archive dir '/var/log/./archive//', already used by output "
        "'one' (at 10:5)");
}

TEST_CASE("validateConfig wants backoff.initial <= backoff.max", "[config][validate]") {
  Config config = baseConfig();
  std::get<TcpOutput>(config.outputs[0].kind).backoff = Backoff{Millis(5000), Millis(1500)};
  std::vector<ConfigError> errors = validateConfig(config);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message ==
        "'backoff.initial' (5s) is greater than 'backoff.max' (1500ms) in output 'central'");
  std::get<TcpOutput>(config.outputs[0].kind).backoff = Backoff{Millis(1500), Millis(1500)};
  CHECK(validateConfig(config).empty());
}

TEST_CASE("validateConfig collects every problem", "[config][validate]") {
  Config config = baseConfig();
  config.inputs.push_back(input("a", {4, 5}));
  config.outputs.push_back(tcpOutput("central", {12, 5}, {"b"}));
  config.outputs.push_back(archiveOutput("x", {16, 5}, "/d"));
  config.outputs.push_back(archiveOutput("y", {20, 5}, "/d"));
  CHECK(validateConfig(config).size() == 4);
}

}  // namespace
}  // namespace logsplice::config
