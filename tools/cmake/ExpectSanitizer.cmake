# Runs a canary program (BIN) and fails (so that the WILL_FAIL test passes)
# only if the program exited non-zero and its output matches EXPECT.
execute_process(COMMAND ${BIN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0 AND out MATCHES "${EXPECT}")
  message(FATAL_ERROR "canary caught as expected (exit ${rc}, report matches '${EXPECT}')")
endif()
message("canary NOT caught: exit ${rc}, expected a report matching '${EXPECT}'")
