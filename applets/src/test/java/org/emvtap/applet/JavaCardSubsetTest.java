package org.emvtap.applet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.Type;
import org.objectweb.asm.tree.AbstractInsnNode;
import org.objectweb.asm.tree.ClassNode;
import org.objectweb.asm.tree.FieldNode;
import org.objectweb.asm.tree.IntInsnNode;
import org.objectweb.asm.tree.LdcInsnNode;
import org.objectweb.asm.tree.LocalVariableNode;
import org.objectweb.asm.tree.MethodInsnNode;
import org.objectweb.asm.tree.MethodNode;
import org.objectweb.asm.tree.TypeInsnNode;

/**
 * A first line of the Java Card converter's checks, run on the compiled applet classes (the real
 * converter needs the Oracle SDK, see build-cap.xml): the classic subset has no int, long,
 * float, double or String in fields, signatures or local variables, no long/float/double
 * arithmetic, no string constants, no java.lang calls but Object's constructor, and the applets
 * allocate only while being installed (constructors, install, static array constants).
 */
class JavaCardSubsetTest {

    private static final Path CLASSES = Paths.get("target", "classes", "org", "emvtap", "applet");

    static List<ClassNode> appletClasses() throws IOException {
        List<ClassNode> out = new ArrayList<>();
        try (Stream<Path> files = Files.list(CLASSES)) {
            for (Path p : (Iterable<Path>) files.filter(f -> f.toString().endsWith(".class"))::iterator) {
                try (InputStream in = Files.newInputStream(p)) {
                    ClassNode node = new ClassNode();
                    new ClassReader(in).accept(node, 0);
                    out.add(node);
                }
            }
        }
        return out;
    }

    private static boolean forbiddenType(Type t) {
        switch (t.getSort()) {
            case Type.INT: case Type.LONG: case Type.FLOAT: case Type.DOUBLE: return true;
            case Type.ARRAY: return forbiddenType(t.getElementType());
            case Type.OBJECT: return t.getInternalName().equals("java/lang/String");
            default: return false;
        }
    }

    private static boolean allocates(String method) {
        return method.equals("<init>") || method.equals("<clinit>") || method.equals("install");
    }

    @Test
    void appletClassesKeepToTheJavaCardClassicSubset() throws IOException {
        List<ClassNode> classes = appletClasses();
        assertTrue(classes.size() >= 14, "applet classes found: " + classes.size());
        List<String> problems = new ArrayList<>();
        for (ClassNode c : classes) {
            for (FieldNode f : c.fields) {
                if (forbiddenType(Type.getType(f.desc))) {
                    problems.add(c.name + "." + f.name + ": field of type " + f.desc);
                }
            }
            for (MethodNode m : c.methods) {
                String where = c.name + "." + m.name + m.desc;
                Type mt = Type.getMethodType(m.desc);
                if (forbiddenType(mt.getReturnType())) {
                    problems.add(where + ": returns " + mt.getReturnType());
                }
                for (Type a : mt.getArgumentTypes()) {
                    if (forbiddenType(a)) {
                        problems.add(where + ": parameter of type " + a);
                    }
                }
                if (m.localVariables != null) {
                    for (LocalVariableNode v : m.localVariables) {
                        if (forbiddenType(Type.getType(v.desc))) {
                            problems.add(where + ": local " + v.name + " of type " + v.desc);
                        }
                    }
                }
                for (AbstractInsnNode insn : m.instructions) {
                    int op = insn.getOpcode();
                    if ((op >= Opcodes.LCONST_0 && op <= Opcodes.DCONST_1)
                            || (op >= Opcodes.LADD && op <= Opcodes.DREM && (op - Opcodes.IADD) % 4 != 0)
                            || op == Opcodes.I2L || op == Opcodes.I2F || op == Opcodes.I2D
                            || op == Opcodes.LCMP || (op >= Opcodes.FCMPL && op <= Opcodes.DCMPG)) {
                        problems.add(where + ": long/float/double opcode " + op);
                    }
                    if (insn instanceof LdcInsnNode && ((LdcInsnNode) insn).cst instanceof String) {
                        problems.add(where + ": string constant");
                    }
                    if (insn instanceof MethodInsnNode) {
                        MethodInsnNode call = (MethodInsnNode) insn;
                        if (call.owner.startsWith("java/") && !(call.owner.equals("java/lang/Object")
                                && call.name.equals("<init>"))) {
                            problems.add(where + ": calls " + call.owner + "." + call.name);
                        }
                    }
                    boolean alloc = op == Opcodes.NEW || op == Opcodes.ANEWARRAY
                            || op == Opcodes.MULTIANEWARRAY || op == Opcodes.NEWARRAY;
                    if (alloc && !allocates(m.name)) {
                        String what = insn instanceof TypeInsnNode ? ((TypeInsnNode) insn).desc
                                : insn instanceof IntInsnNode ? "array" : "";
                        problems.add(where + ": allocates " + what + " after install");
                    }
                    if (op == Opcodes.NEWARRAY && ((IntInsnNode) insn).operand != Opcodes.T_BYTE
                            && ((IntInsnNode) insn).operand != Opcodes.T_SHORT
                            && ((IntInsnNode) insn).operand != Opcodes.T_BOOLEAN) {
                        problems.add(where + ": array of a type Java Card does not have");
                    }
                }
            }
        }
        assertEquals(new ArrayList<String>(), problems);
    }
}
