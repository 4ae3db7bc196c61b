#include <stdio.h>
#include <greet.h>

int main(void) {
  printf("%s, %s\n", GREETING, greet_message());
  return 0;
}
