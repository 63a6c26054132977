"""Hostile programs in every language the sandbox compiles or interprets besides Python (Python's own are in
test_sandbox_hostile.py). Each kind of attack is written the way that language would do it:

- network:  connect to a TCP listener the test holds on the host's loopback; prints "blocked" when it cannot.
- fork_bomb: start processes without end.
- memory:   allocate and touch memory without end.
- disk:     write 8 MiB files until writing fails; prints how many MiB were written, exits non-zero on the failure.
- outside:  write to the host path {marker}, to /etc, /usr and /; prints "blocked" for each write that fails.
- daemon:   leave a process running in the background and exit at once.

`{port}` and `{marker}` are filled in by the test.
"""

HOSTILE = {
    "bash": {
        "network": "exec 3<>/dev/tcp/127.0.0.1/{port} 2>/dev/null && echo connected || echo blocked\n",
        "fork_bomb": "while true; do sleep 100 & done\n",
        "memory": "s=xxxxxxxxxxxxxxxx\nwhile true; do s=$s$s; done\n",
        "disk": "n=0\nfor i in $(seq 1 100); do\n  head -c 8388608 /dev/zero > fill$i || { echo $n; exit 1; }\n"
                "  n=$((n+8))\ndone\necho $n\n",
        "outside": "for f in {marker} /etc/crucible-x /usr/crucible-x /crucible-x; do\n"
                   "  (echo pwned > $f) 2>/dev/null && echo written || echo blocked\ndone\n",
        "daemon": "setsid sleep 60 > /dev/null 2>&1 < /dev/null &\necho parent done\n",
    },
    "javascript": {
        "network": "const net = require('net');\n"
                   "const s = net.connect({port: {port}, host: '127.0.0.1'}, () => { console.log('connected'); "
                   "s.end(); });\ns.on('error', () => console.log('blocked'));\n",
        "fork_bomb": "const {spawn} = require('child_process');\n"
                     "while (true) { try { spawn('/bin/sleep', ['100']); } catch (e) {} }\n",
        "memory": "const keep = [];\nwhile (true) { keep.push(new Array(1e6).fill(1.5)); }\n",
        "disk": "const fs = require('fs');\nlet n = 0;\nconst chunk = Buffer.alloc(8 * 1024 * 1024, 120);\n"
                "try {\n  for (let i = 0; i < 100; i++) { fs.writeFileSync('fill' + i, chunk); n += 8; }\n"
                "} catch (e) { console.log(n); console.error(e.message); process.exit(1); }\nconsole.log(n);\n",
        "outside": "const fs = require('fs');\n"
                   "for (const f of ['{marker}', '/etc/crucible-x', '/usr/crucible-x', '/crucible-x']) {\n"
                   "  try { fs.writeFileSync(f, 'pwned'); console.log('written'); } "
                   "catch (e) { console.log('blocked'); }\n}\n",
        "daemon": "const {spawn} = require('child_process');\n"
                  "spawn('/bin/sleep', ['60'], {detached: true, stdio: 'ignore'}).unref();\n"
                  "console.log('parent done');\n",
    },
    "c": {
        "network": "#include <stdio.h>\n#include <string.h>\n#include <arpa/inet.h>\n#include <sys/socket.h>\n"
                   "int main(void) {\n  int s = socket(AF_INET, SOCK_STREAM, 0);\n  struct sockaddr_in a;\n"
                   "  memset(&a, 0, sizeof a);\n  a.sin_family = AF_INET;\n  a.sin_port = htons({port});\n"
                   "  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);\n"
                   "  puts(connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? \"connected\" : \"blocked\");\n"
                   "  return 0;\n}\n",
        "fork_bomb": "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n",
        "memory": "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nint main(void) {\n"
                  "  for (;;) {\n    char *p = malloc(64 << 20);\n"
                  "    if (!p) { perror(\"malloc\"); return 1; }\n    memset(p, 1, 64 << 20);\n  }\n}\n",
        "disk": "#include <stdio.h>\n#include <string.h>\nstatic char chunk[8 << 20];\nint main(void) {\n"
                "  int n = 0;\n  char name[32];\n  memset(chunk, 'x', sizeof chunk);\n"
                "  for (int i = 0; i < 100; i++) {\n    snprintf(name, sizeof name, \"fill%d\", i);\n"
                "    FILE *f = fopen(name, \"wb\");\n"
                "    if (!f || fwrite(chunk, 1, sizeof chunk, f) != sizeof chunk || fclose(f) != 0) {\n"
                "      perror(\"write\");\n      printf(\"%d\\n\", n);\n      return 1;\n    }\n    n += 8;\n  }\n"
                "  printf(\"%d\\n\", n);\n  return 0;\n}\n",
        "outside": "#include <stdio.h>\nint main(void) {\n"
                   "  const char *targets[] = {\"{marker}\", \"/etc/crucible-x\", \"/usr/crucible-x\",\n"
                   "                           \"/crucible-x\"};\n"
                   "  for (int i = 0; i < 4; i++) {\n    FILE *f = fopen(targets[i], \"w\");\n"
                   "    puts(f ? \"written\" : \"blocked\");\n    if (f) fclose(f);\n  }\n  return 0;\n}\n",
        "daemon": "#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n"
                  "  if (fork() == 0) { setsid(); sleep(60); return 0; }\n  puts(\"parent done\");\n  return 0;\n}\n",
    },
    "cpp": {
        "network": "#include <arpa/inet.h>\n#include <sys/socket.h>\n#include <cstring>\n#include <iostream>\n"
                   "int main() {\n  int s = socket(AF_INET, SOCK_STREAM, 0);\n  sockaddr_in a{};\n"
                   "  a.sin_family = AF_INET;\n  a.sin_port = htons({port});\n"
                   "  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);\n"
                   "  std::cout << (connect(s, (sockaddr *)&a, sizeof a) == 0 ? \"connected\" : \"blocked\") << "
                   "std::endl;\n}\n",
        "fork_bomb": "#include <unistd.h>\nint main() { for (;;) fork(); }\n",
        "memory": "#include <vector>\n#include <cstring>\nint main() {\n  std::vector<std::vector<char>> keep;\n"
                  "  for (;;) { keep.emplace_back(64 << 20, 1); }\n}\n",
        "disk": "#include <fstream>\n#include <iostream>\n#include <string>\nint main() {\n"
                "  std::string chunk(8 << 20, 'x');\n  int n = 0;\n  for (int i = 0; i < 100; i++) {\n"
                "    std::ofstream f(\"fill\" + std::to_string(i), std::ios::binary);\n"
                "    f.write(chunk.data(), chunk.size());\n    f.close();\n"
                "    if (!f) { std::cerr << \"write failed\" << std::endl; std::cout << n << std::endl; return 1; }\n"
                "    n += 8;\n  }\n  std::cout << n << std::endl;\n}\n",
        "outside": "#include <fstream>\n#include <iostream>\nint main() {\n"
                   "  for (auto t : {\"{marker}\", \"/etc/crucible-x\", \"/usr/crucible-x\", \"/crucible-x\"}) {\n"
                   "    std::ofstream f(t);\n    std::cout << (f.is_open() ? \"written\" : \"blocked\") << "
                   "std::endl;\n  }\n}\n",
        "daemon": "#include <unistd.h>\n#include <iostream>\nint main() {\n"
                  "  if (fork() == 0) { setsid(); sleep(60); return 0; }\n"
                  "  std::cout << \"parent done\" << std::endl;\n}\n",
    },
    "rust": {
        "network": "use std::net::TcpStream;\nfn main() {\n"
                   "    match TcpStream::connect(\"127.0.0.1:{port}\") {\n"
                   "        Ok(_) => println!(\"connected\"),\n        Err(_) => println!(\"blocked\"),\n    }\n}\n",
        "fork_bomb": "use std::process::Command;\nfn main() {\n"
                     "    loop { let _ = Command::new(\"/bin/sleep\").arg(\"100\").spawn(); }\n}\n",
        "memory": "fn main() {\n    let mut keep: Vec<Vec<u8>> = Vec::new();\n"
                  "    loop { keep.push(vec![1u8; 64 << 20]); }\n}\n",
        "disk": "use std::fs;\nfn main() {\n    let chunk = vec![b'x'; 8 << 20];\n    let mut n = 0;\n"
                "    for i in 0..100 {\n        if let Err(e) = fs::write(format!(\"fill{}\", i), &chunk) {\n"
                "            eprintln!(\"{}\", e);\n            println!(\"{}\", n);\n"
                "            std::process::exit(1);\n"
                "        }\n        n += 8;\n    }\n    println!(\"{}\", n);\n}\n",
        "outside": "use std::fs;\nfn main() {\n"
                   "    for t in [\"{marker}\", \"/etc/crucible-x\", \"/usr/crucible-x\", \"/crucible-x\"] {\n"
                   "        let ok = fs::write(t, \"pwned\").is_ok();\n"
                   "        println!(\"{}\", if ok { \"written\" } else { \"blocked\" });\n"
                   "    }\n}\n",
        "daemon": "use std::process::{Command, Stdio};\nfn main() {\n"
                  "    Command::new(\"/bin/sleep\").arg(\"60\").stdout(Stdio::null()).stderr(Stdio::null())"
                  ".spawn().unwrap();\n    println!(\"parent done\");\n}\n",
    },
    "go": {
        "network": "package main\n\nimport (\n\t\"fmt\"\n\t\"net\"\n)\n\nfunc main() {\n"
                   "\tif c, err := net.Dial(\"tcp\", \"127.0.0.1:{port}\"); err == nil {\n"
                   "\t\tc.Close()\n\t\tfmt.Println(\"connected\")\n\t} else {\n\t\tfmt.Println(\"blocked\")\n\t}\n}\n",
        "fork_bomb": "package main\n\nimport \"os/exec\"\n\nfunc main() {\n"
                     "\tfor {\n\t\t_ = exec.Command(\"/bin/sleep\", \"100\").Start()\n\t}\n}\n",
        "memory": "package main\n\nfunc main() {\n\tvar keep [][]byte\n\tfor {\n"
                  "\t\tb := make([]byte, 64<<20)\n\t\tfor i := range b {\n\t\t\tb[i] = 1\n\t\t}\n"
                  "\t\tkeep = append(keep, b)\n\t}\n}\n",
        "disk": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n"
                "\tchunk := make([]byte, 8<<20)\n\tn := 0\n\tfor i := 0; i < 100; i++ {\n"
                "\t\tif err := os.WriteFile(fmt.Sprintf(\"fill%d\", i), chunk, 0o600); err != nil {\n"
                "\t\t\tfmt.Fprintln(os.Stderr, err)\n\t\t\tfmt.Println(n)\n\t\t\tos.Exit(1)\n\t\t}\n"
                "\t\tn += 8\n\t}\n\tfmt.Println(n)\n}\n",
        "outside": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n"
                   "\tfor _, t := range []string{\"{marker}\", \"/etc/crucible-x\", \"/usr/crucible-x\", "
                   "\"/crucible-x\"} {\n"
                   "\t\tif os.WriteFile(t, []byte(\"pwned\"), 0o600) == nil {\n\t\t\tfmt.Println(\"written\")\n"
                   "\t\t} else {\n\t\t\tfmt.Println(\"blocked\")\n\t\t}\n\t}\n}\n",
        "daemon": "package main\n\nimport (\n\t\"fmt\"\n\t\"os/exec\"\n)\n\nfunc main() {\n"
                  "\t_ = exec.Command(\"/bin/sleep\", \"60\").Start()\n\tfmt.Println(\"parent done\")\n}\n",
    },
    "java": {
        "network": "import java.net.Socket;\nclass Main {\n  public static void main(String[] args) {\n"
                   "    try (Socket s = new Socket(\"127.0.0.1\", {port})) { System.out.println(\"connected\"); }\n"
                   "    catch (Exception e) { System.out.println(\"blocked\"); }\n  }\n}\n",
        "fork_bomb": "class Main {\n  public static void main(String[] args) {\n"
                     "    while (true) { try { new ProcessBuilder(\"/bin/sleep\", \"100\").start(); } "
                     "catch (Exception e) { } }\n  }\n}\n",
        "memory": "import java.util.*;\nclass Main {\n  public static void main(String[] args) {\n"
                  "    List<long[]> keep = new ArrayList<>();\n"
                  "    while (true) { long[] b = new long[8 << 20]; Arrays.fill(b, 1L); keep.add(b); }\n  }\n}\n",
        "disk": "import java.nio.file.*;\nclass Main {\n  public static void main(String[] args) {\n"
                "    byte[] chunk = new byte[8 << 20];\n    int n = 0;\n    try {\n"
                "      for (int i = 0; i < 100; i++) { Files.write(Paths.get(\"fill\" + i), chunk); n += 8; }\n"
                "    } catch (Exception e) { System.err.println(e); System.out.println(n); System.exit(1); }\n"
                "    System.out.println(n);\n  }\n}\n",
        "outside": "import java.nio.file.*;\nclass Main {\n  public static void main(String[] args) {\n"
                   "    for (String t : new String[] {\"{marker}\", \"/etc/crucible-x\", \"/usr/crucible-x\", "
                   "\"/crucible-x\"}) {\n"
                   "      try { Files.writeString(Paths.get(t), \"pwned\"); System.out.println(\"written\"); }\n"
                   "      catch (Exception e) { System.out.println(\"blocked\"); }\n    }\n  }\n}\n",
        "daemon": "class Main {\n  public static void main(String[] args) throws Exception {\n"
                  "    new ProcessBuilder(\"/bin/sleep\", \"60\").start();\n"
                  "    System.out.println(\"parent done\");\n  }\n}\n",
    },
    "php": {
        "network": "<?php\n$s = @fsockopen('127.0.0.1', {port}, $errno, $errstr, 2);\n"
                   "echo $s ? \"connected\\n\" : \"blocked\\n\";\n",
        "fork_bomb": "<?php\nwhile (true) { @proc_open(['/bin/sleep', '100'], [], $pipes); }\n",
        "memory": "<?php\nini_set('memory_limit', '-1');\n$keep = [];\n"
                  "while (true) { $keep[] = str_repeat('x', 64 << 20); }\n",
        "disk": "<?php\n$chunk = str_repeat('x', 8 << 20);\n$n = 0;\nfor ($i = 0; $i < 100; $i++) {\n"
                "  if (@file_put_contents(\"fill$i\", $chunk) !== strlen($chunk)) {\n"
                "    fwrite(STDERR, \"write failed\\n\");\n    echo \"$n\\n\";\n    exit(1);\n  }\n  $n += 8;\n}\n"
                "echo \"$n\\n\";\n",
        "outside": "<?php\nforeach (['{marker}', '/etc/crucible-x', '/usr/crucible-x', '/crucible-x'] as $t) {\n"
                   "  echo @file_put_contents($t, 'pwned') === false ? \"blocked\\n\" : \"written\\n\";\n}\n",
        "daemon": "<?php\nexec('setsid /bin/sleep 60 > /dev/null 2>&1 < /dev/null &');\necho \"parent done\\n\";\n",
    },
}
