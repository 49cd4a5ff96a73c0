// Run once by the mongo-init service (mongosh, as the root user on mongo-1): make the three
// members one replica set, wait for a primary, and create the `contesto` user the API and
// ingest log in as. Running it again changes nothing.
const members = ["mongo-1:27017", "mongo-2:27017", "mongo-3:27017"];

try {
  rs.status();
} catch (notYet) {
  rs.initiate({ _id: "rs0", members: members.map((host, i) => ({ _id: i, host })) });
}
while (!db.hello().isWritablePrimary) {
  sleep(1000);
}

const admin = db.getSiblingDB("admin");
if (admin.getUser("contesto") === null) {
  // Tenants get databases of their own (ctx_<tenant>), created and dropped at run time.
  admin.createUser({
    user: "contesto",
    pwd: process.env.MONGO_APP_PASSWORD,
    roles: ["readWriteAnyDatabase", "dbAdminAnyDatabase"],
  });
}
print("replica set rs0 ready; user contesto exists");
